"""HTTP GET to a port inside a pod, through the Kubernetes port-forward API.

pprof endpoints must never be exposed through a Service (anyone reaching
them can profile or stall the process), so debugcap reaches them the way
``kubectl port-forward`` does. The kubelet's runtime dials ``localhost:<port>``
inside the pod's network namespace, so a server bound to 127.0.0.1 is reached
too.

One websocket carries several connections: asking for the same port N times
(``ports=6060&ports=6060``) gives N independent TCP connections, each on its own
pair of channels. A capture needs a few at once (the CPU profile and the trace
hold theirs for the whole window) and each websocket is a stream through the API
server and the kubelet, so one tunnel with N connections costs a third of three
tunnels. Connections are HTTP/1.1 kept alive between requests.

We speak the channel protocol ourselves instead of using ``kubernetes.stream``'s
``PortForward``: that class keys connections by port number, so it refuses the
same port twice, and it runs a proxy thread and a socket pair per tunnel.
"""

from __future__ import annotations

import http.client
import io
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from websocket import ABNF, WebSocketConnectionClosedException, WebSocketTimeoutException

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube.client import Kube, segment

CHUNK = 256 << 10
# How often the tunnel's reader wakes up to notice it was closed (judgement call: closing is rare,
# and a blocked reader only delays the close of a tunnel that nobody uses any more).
READER_POLL_SECONDS = 1.0
# Longest a connection opened ahead of its first request is used (see Pool.open): Go servers are
# often given a ReadHeaderTimeout of 5-10 s, which closes a connection that has sent nothing.
AHEAD_FRESH_SECONDS = 3.0
# Longest wait for the API server to answer a new tunnel (TCP, TLS and the websocket upgrade).
CONNECT_SECONDS = 15.0
# Longest wait for the rest of a frame that has started to arrive, holding the connection's lock.
FRAME_SECONDS = 30.0
# Most bytes a connection holds unread: past it the tunnel's reader waits for the request (until
# its deadline); unasked bytes drop the connection, as does a request giving up (cap, timeout).
# Without it a pod sent 1 GB in 1.5 s into memory past the 64 MiB cap. Judgement call.
BUFFER_BYTES = 4 << 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    truncated: bool = False
    duration_s: float = 0.0


class _Tunnel:
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
        self.connections = [_Connection(self, i) for i in range(n)]
        self._reader = threading.Thread(target=self._read, name=f"port-forward {namespace}/{pod}:{port}",
                                        daemon=True)
        self._reader.start()

    def send(self, channel: int, data: bytes) -> None:
        with self._io_lock:
            self._ws.send(bytes([channel]) + data, opcode=ABNF.OPCODE_BINARY)

    def _read(self) -> None:
        seen: set[int] = set()  # each channel's first frame is the port number, not data
        sock = self._ws.sock
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
                    else:
                        conn.feed(payload)
        except (WebSocketConnectionClosedException, OSError, ValueError, AttributeError) as exc:
            # ValueError, AttributeError: select() on, or a read from, a socket shutdown() closed.
            logger.debug("%s: tunnel ended: %r", self.target, exc)
        finally:
            self.finished = True
            for conn in self.connections:
                conn.fail("")

    def first_error(self) -> str:
        """An error the kubelet sent for any connection of this tunnel ("" when none came): one refused
        dial may end the whole websocket, and its siblings were dialled to the same port."""
        return next((c.error for c in self.connections if c.error), "")

    def close(self) -> None:
        self._closed = True
        try:
            # Not close(): it waits for the peer's CLOSE by reading, and the reader thread reads.
            with self._io_lock:
                self._ws.send_close()
        except (WebSocketConnectionClosedException, OSError):
            pass
        with self._io_lock:
            sock = self._ws.sock
            if sock is not None:
                # Closing a socket does not wake a select() on it in another thread; shutting it
                # down does. Without this the reader slept out its poll, and a capture's end
                # (which holds a concurrency slot) waited up to READER_POLL_SECONDS for it.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._ws.shutdown()
        self._reader.join(timeout=READER_POLL_SECONDS + 1)


class _Connection(io.RawIOBase):
    """One TCP connection inside a tunnel, shaped like the socket ``http.client`` expects."""

    def __init__(self, tunnel: _Tunnel, index: int) -> None:
        super().__init__()
        self.tunnel, self.index = tunnel, index
        self._cond = threading.Condition()
        self._buf = bytearray()
        self._eof = False
        self.dropped = False  # given up on: what still comes is thrown away (see drop)
        self.error = ""
        self.timeout: float | None = None
        self.deadline: float | None = None  # the request's (see _request): reads never wait past it

    # -- fed by the tunnel's reader
    def feed(self, data: bytes) -> None:
        """Bytes for this connection: at most :data:`BUFFER_BYTES` held (see there)."""
        with self._cond:
            while len(self._buf) >= BUFFER_BYTES and not self.dropped:
                wait = None if self.deadline is None else self.deadline - time.monotonic()
                if wait is None or wait <= 0:  # nobody reads them, or nobody will in time
                    self._drop(f"it sent more than {BUFFER_BYTES >> 20} MiB that were not read")
                    break
                self._cond.wait(wait)
            if self.dropped:
                return
            self._buf += data
            self._cond.notify_all()

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


class _Stale(Exception):
    """A kept-alive connection the server had already closed: retry on another one."""


def _request(conn: _Connection, path: str, sink: IO[bytes], timeout: float, max_bytes: int,
             reused: bool, sent: Callable[[], None] | None = None) -> tuple[HttpResult, bool]:
    """GET ``path`` on ``conn``; the result and whether the connection may carry another request.
    ``timeout`` bounds all of it, headers and body: every read waits only for what is left before
    the deadline (:meth:`_Connection.readinto`); the body is read as it comes (``read1``)."""
    started = time.monotonic()
    deadline = started + timeout
    conn.deadline = deadline
    try:
        return _exchange(conn, path, sink, timeout, deadline, max_bytes, reused, sent, started)
    finally:
        conn.deadline = None


def _late(path: str, target: str, timeout: float, written: int) -> errors.CollectorError:
    got = f" ({written} bytes of the body came)" if written else ""
    return errors.CollectorError(f"GET {path} from {target} did not finish within {timeout:.0f}s{got}; "
                                 "raise the timeout (timeoutSeconds / --timeout)")


def _exchange(conn: _Connection, path: str, sink: IO[bytes], timeout: float, deadline: float, max_bytes: int,
              reused: bool, sent: Callable[[], None] | None, started: float) -> tuple[HttpResult, bool]:
    target = conn.tunnel.target
    http_conn = http.client.HTTPConnection("localhost", timeout=timeout)
    http_conn.sock = conn
    try:
        http_conn.request("GET", path, headers={"Accept-Encoding": "identity"})
        if sent is not None:
            sent()
        resp = http_conn.getresponse()
    except (http.client.HTTPException, OSError) as exc:
        # A timeout is no sign of a closed connection (that fails at once), and asking again would
        # repeat a CPU profile on a pod already too slow to answer one.
        if isinstance(exc, TimeoutError):
            raise _late(path, target, timeout, 0) from exc
        if reused and not conn.error:
            raise _Stale(str(exc)) from exc
        message, refused = _refused_message(conn, target, exc, deadline)
        raise (Refused(message) if refused else errors.CollectorError(message)) from exc
    written, truncated = 0, False
    while True:
        try:
            chunk = resp.read1(CHUNK)  # what has come, at most CHUNK: never waits for a full buffer
        except TimeoutError as exc:
            raise _late(path, target, timeout, written) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise errors.CollectorError(f"GET {path} from {target} broke off after {written} bytes: "
                                        f"{errors.shorten(str(exc))}") from exc
        if not chunk:
            resp.close()  # read1 leaves an ended body open
            break
        room = max_bytes - written
        if len(chunk) > room:
            chunk, truncated = chunk[:room], True
        sink.write(chunk)
        written += len(chunk)
        if truncated:
            break
    result = HttpResult(status=resp.status, headers={k.lower(): v for k, v in resp.getheaders()},
                        body_bytes=written, truncated=truncated, duration_s=time.monotonic() - started)
    return result, not truncated and not resp.will_close and not conn.ended


class Pool:
    """HTTP GETs to one port of one pod over kept-alive connections of shared tunnels.

    The first request opens one tunnel with ``size`` connections; requests that overlap in time
    (the CPU profile, the trace, the quick GETs beside them) each take a connection, and a
    request waits when all are busy. Connections the server closed are replaced through a new
    tunnel.
    """

    def __init__(self, kube: Kube, *, namespace: str, pod: str, port: int, size: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:  # clock: tests pass their own
        self.kube, self.namespace, self.pod, self.port = kube, namespace, pod, port
        self._clock = clock
        self.size = max(size, 1)
        self._cond = threading.Condition()
        self._tunnels: list[_Tunnel] = []
        self._idle: list[tuple[_Connection, bool]] = []  # (connection, used before)
        self._live = 0  # connections idle, in use, or being opened
        self._opened = 0
        self._closed = False
        self._ahead: set[int] = set()  # ids of idle connections open() opened, not used yet
        self._ahead_at = 0.0
        self._asked = False  # a GET was made

    def access(self) -> dict[str, str]:
        """How the capture reached the pod's HTTP endpoints, for the manifest and the status;
        nothing before a GET was made (a template without Go collectors used no transport)."""
        return {"http": "port-forward"} if self._asked else {}

    @property
    def tunnels_opened(self) -> int:
        """Websockets opened so far: what a capture cost the API server and the kubelet."""
        with self._cond:
            return self._opened

    def open(self) -> None:
        """Open the first tunnel now, ahead of the requests; best effort.

        A tunnel that cannot open is met again, and reported, by the first request. Connections
        opened ahead are not used once they have ended (the port was refused while the program
        was still starting) or have waited :data:`AHEAD_FRESH_SECONDS` (a server with a
        ``ReadHeaderTimeout`` closes a connection that sends nothing, and through a port-forward
        that close may never show): the first request then opens new ones.
        """
        try:
            conn, _ = self._acquire()
        except errors.CollectorError:
            return
        with self._cond:
            self._idle.append((conn, False))
            self._ahead = {id(c) for c, _ in self._idle}
            self._ahead_at = self._clock()
            self._cond.notify_all()

    def _usable(self, conn: _Connection) -> bool:
        """False for a connection opened ahead that must not be used (see :meth:`open`); it and
        the other unused ones opened with it are then dropped."""
        with self._cond:
            if id(conn) not in self._ahead:
                return True
            self._ahead.discard(id(conn))
            if not conn.ended and self._clock() - self._ahead_at < AHEAD_FRESH_SECONDS:
                return True
            stale = [c for c, _ in self._idle if id(c) in self._ahead]
            self._idle = [(c, used) for c, used in self._idle if id(c) not in self._ahead]
            self._ahead.difference_update(id(c) for c in stale)
            # Ones other threads took meanwhile are as old: their own check now drops them too.
            self._ahead_at = float("-inf")
            self._live -= len(stale) + 1
            self._cond.notify_all()
            return False

    def get(self, path: str, sink: IO[bytes], *, timeout: float = 60.0, max_bytes: int = 256 << 20,
            sent: Callable[[], None] | None = None) -> HttpResult:
        """GET ``path``; the body streams into ``sink`` (capped at ``max_bytes``). ``sent`` is called
        once the request has gone out: for a CPU profile or a trace, its window has begun."""
        self._asked = True
        while True:
            conn, reused = self._acquire()
            if not self._usable(conn):
                continue
            keep = False
            try:
                result, keep = _request(conn, path, sink, timeout, max_bytes, reused, sent)
                return result
            except _Stale:
                continue  # nothing was written to the sink: ask again on another connection
            finally:
                self._release(conn, keep)

    def _acquire(self) -> tuple[_Connection, bool]:
        with self._cond:
            while not self._idle and self._live >= self.size and not self._closed:
                self._cond.wait()
            if self._closed:
                raise errors.CollectorError(f"port-forward to pod {self.namespace}/{self.pod} closed: capture over")
            if self._idle:
                return self._idle.pop()
            # The first tunnel brings all the connections a capture uses at once; later ones
            # replace connections the server closed (or that were dropped, see open()).
            n = self.size - self._live
            self._live += n
        try:
            tunnel = _Tunnel(self.kube, namespace=self.namespace, pod=self.pod, port=self.port, n=n)
        except BaseException:
            with self._cond:
                self._live -= n
                self._cond.notify_all()
            raise
        with self._cond:
            self._tunnels.append(tunnel)
            self._opened += 1
            first, *rest = tunnel.connections
            self._idle.extend((c, False) for c in rest)
            self._cond.notify_all()
        return first, False

    def _release(self, conn: _Connection, keep: bool) -> None:
        done: _Tunnel | None = None
        with self._cond:
            if keep and not self._closed:
                self._idle.append((conn, True))
            else:
                self._live -= 1
                conn.drop()  # cut at its cap, timed out or closed: nothing more of it is read
                # A tunnel whose connections are all given up on is closed: a flood stops coming.
                tunnel = conn.tunnel
                if tunnel in self._tunnels and all(c.dropped for c in tunnel.connections):
                    self._tunnels.remove(tunnel)
                    done = tunnel
            self._cond.notify_all()
        if done is not None:
            done.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            tunnels, self._tunnels, self._idle = self._tunnels, [], []
            self._cond.notify_all()
        for tunnel in tunnels:
            tunnel.close()


def get(kube: Kube, *, namespace: str, pod: str, port: int, path: str, sink: IO[bytes], timeout: float = 60.0,
        max_bytes: int = 256 << 20) -> HttpResult:
    """One GET of ``path`` from ``pod:port`` over a tunnel of its own."""
    pool = Pool(kube, namespace=namespace, pod=pod, port=port)
    try:
        return pool.get(path, sink, timeout=timeout, max_bytes=max_bytes)
    finally:
        pool.close()


class Refused(errors.CollectorError):
    """Nothing listens on the pod's port: the kubelet's dial inside the pod was refused (proof that
    pprof is not served there, which the operator's pre-flight check acts on)."""


def _refused_message(conn: _Connection, target: str, exc: Exception, deadline: float) -> tuple[str, bool]:
    # The kubelet's error channel may arrive a moment after the connection ended: wait for it up
    # to 5 s, within the request's deadline. It comes at once when it comes at all (it ends the wait);
    # 1 s was too short on a 2-core machine running the whole test suite, and a refused port was
    # then reported as "cannot reach" without the fix.
    detail = conn.wait_error(min(5.0, deadline - time.monotonic()))
    if "refused" in detail or isinstance(exc, ConnectionRefusedError):
        return (f"nothing listens on {target} (connection refused); set the pprof port with the pod "
                "annotation debugcap.io/pprof-port or --pprof-port"), True
    return f"cannot reach {target}: {errors.shorten(detail or str(exc) or type(exc).__name__)}", False

