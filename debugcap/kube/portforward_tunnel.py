"""One port-forward websocket (:class:`Tunnel`) and the TCP connections it carries (:class:`Connection`).

The channel protocol: each connection has a data channel (``2 * index``) and an error channel
(``2 * index + 1``); the first frame of each is the port number. A connection cannot be closed
alone in this protocol, only the whole websocket. Used by :mod:`debugcap.kube.portforward`,
whose :class:`~debugcap.kube.portforward.Pool` hands connections to requests.

Bounds against a hostile pod (issue 16): a connection holds at most :data:`BUFFER_BYTES` unread;
one given up on (cut at its cap, timed out) throws away what still comes, and past
:data:`DRAIN_BYTES` of that the tunnel is closed rather than drained; :meth:`Tunnel.close` wakes
every request blocked on one of its connections, whatever the tunnel's reader is doing.
"""

from __future__ import annotations

import io
import logging
import select
import socket
import ssl
import threading
import time

from websocket import ABNF, WebSocketConnectionClosedException, WebSocketTimeoutException

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube.client import Kube, segment

# How often the tunnel's reader wakes up to notice it was closed (judgement call: closing is rare,
# and a blocked reader only delays the close of a tunnel that nobody uses any more).
READER_POLL_SECONDS = 1.0
# Longest wait for the API server to answer a new tunnel (TCP, TLS and the websocket upgrade).
CONNECT_SECONDS = 15.0
# Longest wait for the rest of a frame that has started to arrive, holding the connection's lock.
FRAME_SECONDS = 30.0
# Most bytes a connection holds unread: past it the tunnel's reader waits for the request (until
# its deadline); unasked bytes drop the connection, as does a request giving up (cap, timeout).
# Without it a pod sent 1 GB in 1.5 s into memory past the 64 MiB cap. Judgement call.
BUFFER_BYTES = 4 << 20
# Most bytes a connection given up on may still send before its tunnel is closed (taking the
# requests of its siblings with it): a body cut at its cap may be followed by some more of itself,
# which is cheaper to let pass than a CPU profile on a sibling is to lose; a flood is not (it went
# on, through the API server, until the capture ended: 1 GB every 1.5 s). Judgement call.
DRAIN_BYTES = 16 << 20

logger = logging.getLogger(__name__)


class Tunnel:
    """One port-forward websocket carrying ``n`` connections to the same port."""

    def __init__(self, kube: Kube, *, namespace: str, pod: str, port: int, n: int) -> None:
        self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
        path = f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}/portforward"
        try:
            self._ws = kube.websocket(path, [("ports", str(port))] * n, timeout=CONNECT_SECONDS)
        except Exception as exc:  # websocket-client raises many types for a failed handshake
            failure = kube_errors.from_handshake(path, kube.configuration.host, exc)
            raise errors.CollectorError(f"cannot port-forward to {self.target}: {failure}") from exc
        self._io_lock = threading.Lock()
        self._ws.settimeout(FRAME_SECONDS)
        self._closed = False
        self.finished = False  # the reader ended: no error frame can come any more
        self.connections = [Connection(self, i) for i in range(n)]
        self._reader = threading.Thread(target=self._read, name=f"port-forward {namespace}/{pod}:{port}",
                                        daemon=True)
        self._reader.start()

    def send(self, channel: int, data: bytes) -> None:
        with self._io_lock:
            self._ws.send(bytes([channel]) + data, opcode=ABNF.OPCODE_BINARY)

    def _read(self) -> None:
        seen: set[int] = set()  # each channel's first frame is the port number, not data
        sock = self._ws.sock
        flooded = ""
        try:
            while not self._closed and sock is not None:
                # An SSL connection must never be read and written by two threads at once (OpenSSL
                # corrupts its state: "bad record mac"), so reads take the lock that sends take,
                # and only once select() says a frame has started to arrive.
                if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                    ready, _, _ = select.select([sock], [], [], READER_POLL_SECONDS)
                    if not ready:
                        continue
                with self._io_lock:
                    if self._closed:
                        break
                    try:
                        opcode, frame = self._ws.recv_data_frame(True)
                    except WebSocketTimeoutException:
                        continue
                if opcode == ABNF.OPCODE_CLOSE:
                    break
                if opcode != ABNF.OPCODE_BINARY or not frame.data:
                    continue
                channel, payload = frame.data[0], frame.data[1:]
                if channel not in seen:
                    seen.add(channel)
                    continue
                index, is_error = divmod(channel, 2)
                if index < len(self.connections):
                    conn = self.connections[index]
                    if is_error:
                        conn.fail(payload.decode(errors="replace"))
                    elif not conn.feed(payload):
                        flooded = (f"the port-forward to {self.target} was closed: a connection given up on went on "
                                   f"sending (more than {DRAIN_BYTES >> 20} MiB)")
                        break
        except (WebSocketConnectionClosedException, OSError, ValueError, AttributeError) as exc:
            # ValueError, AttributeError: select() on, or a read from, a socket shutdown() closed.
            logger.debug("%s: tunnel ended: %r", self.target, exc)
        finally:
            self.finished = True
            for conn in self.connections:
                if flooded:
                    conn.abort(flooded)
                else:
                    conn.fail("")
            if flooded:
                logger.info("%s", flooded)
            # Nothing more is read: the stream ends here (a flood stops coming), and the socket
            # is closed by the thread that reads it.
            self._closed = True
            self._shutdown()
            with self._io_lock:
                self._ws.shutdown()

    def first_error(self) -> str:
        """An error the kubelet sent for any connection of this tunnel ("" when none came): one refused
        dial may end the whole websocket, and its siblings were dialled to the same port."""
        return next((c.error for c in self.connections if c.error), "")

    def close(self) -> None:
        """End the websocket, and every request on its connections at once: each fails (its
        reads raise), whatever the reader is doing (waiting for the rest of a frame, holding the
        lock sends take, or for room in a connection's buffer)."""
        self._closed = True
        for conn in self.connections:
            conn.abort(f"the port-forward to {self.target} was closed: capture over")
        # A polite CLOSE only if nobody holds the lock: the reader may hold it for FRAME_SECONDS.
        # Not the websocket's close(): it waits for the peer's CLOSE by reading, and the reader reads.
        if self._io_lock.acquire(blocking=False):
            try:
                self._ws.send_close()
            except (WebSocketConnectionClosedException, OSError):
                pass
            finally:
                self._io_lock.release()
        self._shutdown()
        self._reader.join(timeout=READER_POLL_SECONDS + 1)

    def _shutdown(self) -> None:
        """Shut the socket down: a select() or recv() blocked on it in another thread returns
        (closing alone does not wake them). The socket's own shutdown, not SSLSocket's, which
        also drops the TLS state a reader may be in the middle of using."""
        sock = self._ws.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


class Connection(io.RawIOBase):
    """One TCP connection inside a tunnel, shaped like the socket ``http.client`` expects."""

    def __init__(self, tunnel: Tunnel, index: int) -> None:
        super().__init__()
        self.tunnel, self.index = tunnel, index
        self._cond = threading.Condition()
        self._buf = bytearray()
        self._eof = False
        self.dropped = False  # given up on: what still comes is thrown away (see drop)
        self.aborted = False  # its tunnel was closed under it: reads fail (see abort)
        self.drained = 0  # bytes thrown away since it was dropped
        self.error = ""
        self.timeout: float | None = None
        self.deadline: float | None = None  # the request's (see _request): reads never wait past it

    # -- fed by the tunnel's reader
    def feed(self, data: bytes) -> bool:
        """Bytes for this connection: at most :data:`BUFFER_BYTES` held (see there). False when
        the tunnel must be closed: the connection was given up on and more than
        :data:`DRAIN_BYTES` came since."""
        with self._cond:
            while len(self._buf) >= BUFFER_BYTES and not self.dropped:
                wait = None if self.deadline is None else self.deadline - time.monotonic()
                if wait is None or wait <= 0:  # nobody reads them, or nobody will in time
                    self._drop(f"it sent more than {BUFFER_BYTES >> 20} MiB that were not read")
                    break
                self._cond.wait(wait)
            if self.dropped:
                self.drained += len(data)
                return self.drained <= DRAIN_BYTES
            self._buf += data
            self._cond.notify_all()
            return True

    def drop(self, why: str = "") -> None:
        """Throw away what it holds and what still comes (one connection of a tunnel cannot close)."""
        with self._cond:
            self._drop(why)

    def _drop(self, why: str) -> None:  # with self._cond held
        self.dropped = self._eof = True
        self.error = self.error or why
        self._buf.clear()
        self._cond.notify_all()

    def fail(self, message: str) -> None:
        with self._cond:
            self.error = self.error or message
            self._eof = True
            self._cond.notify_all()

    def abort(self, why: str) -> None:
        """Its tunnel is closed: what it holds is thrown away, and a read (one blocked now too)
        raises ``ConnectionAbortedError(why)`` rather than ending the body, which a response
        without a length would take for its end."""
        with self._cond:
            self.aborted = True
            self._drop(why)
            self.error = why

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._eof and not self._buf

    # -- the socket side, for http.client
    def sendall(self, data: bytes) -> None:
        if self._eof:
            raise BrokenPipeError(f"connection to {self.tunnel.target} closed{': ' + self.error if self.error else ''}")
        try:
            self.tunnel.send(self.index * 2, bytes(data))
        except (WebSocketConnectionClosedException, OSError) as exc:
            raise BrokenPipeError(str(exc)) from exc

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def makefile(self, mode: str = "rb", *_a: object, **_k: object) -> io.BufferedReader:
        return io.BufferedReader(self)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        """What has come, at most ``len(b)`` bytes; waits only until the request's deadline (else
        ``timeout``): a server sending a byte at a time cannot stretch a GET past it."""
        deadline = self.deadline
        if deadline is None and self.timeout is not None:
            deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                if self.aborted:
                    raise ConnectionAbortedError(self.error)
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise TimeoutError(f"no answer from {self.tunnel.target} in time")
                if self._buf or self._eof:
                    break
                self._cond.wait(wait)
            n = min(len(b), len(self._buf))
            b[:n] = self._buf[:n]
            del self._buf[:n]
            self._cond.notify_all()  # the tunnel's reader may wait for room (see feed)
            return n

    def wait_error(self, seconds: float) -> str:
        """The kubelet's error for this connection, which may come up to ``seconds`` after it ended."""
        end = time.monotonic() + seconds
        with self._cond:
            while not self.error and not self.tunnel.finished:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            mine = self.error
        return mine or self.tunnel.first_error()

    def close(self) -> None:
        pass  # a connection cannot be closed alone in this protocol: it ends with its tunnel
