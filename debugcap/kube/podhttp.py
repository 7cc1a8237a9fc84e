"""HTTP GETs to a pod's Go endpoints over plain HTTP/1.1 connections, without a websocket.

Two transports share this pool: :class:`Direct` connects to the pod IP itself (an operator
running in the cluster can route to pods), and :class:`debugcap.kube.podproxy.Proxy` goes
through the API server's ``pods/proxy`` subresource. Both reach only a server that listens on
the pod IP: one bound to 127.0.0.1 is reached by :mod:`debugcap.kube.portforward` alone.

Connections are kept alive between requests and opened as requests need them (a capture runs
a few at once: CPU profile and trace hold theirs for the whole window). :meth:`Pool.close` shuts
down connections still in use too, so a request abandoned at a capture's deadline ends at once,
and no request starts after it: connections never reopen by themselves (``auto_open`` off).
A request's ``timeout`` bounds all of it: a new connection's connect (and a proxy's CONNECT,
the TLS handshake: see :meth:`Pool._connection`), the answer's headers and its body too: before
each read from the socket its timeout is set to what is left (:class:`_TimedReads`), so a server
sending a byte at a time cannot stretch a GET past it. :meth:`Pool.close` also shuts down
connections still being opened.
The contract of :meth:`Pool.get` is :meth:`debugcap.kube.portforward.Pool.get`'s.
"""

from __future__ import annotations

import enum
import errno
import http.client
import io
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

from debugcap import errors
from debugcap.kube.portforward import CHUNK, HttpResult

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Longest a new connection to a pod IP may take before the request fails. Inside a cluster a
# connect takes a millisecond or two; a pod IP that does not answer within seconds never will.
DIRECT_CONNECT_SECONDS = 5.0

# What the advice about a server bound to 127.0.0.1 says, for both transports that cannot reach it.
LOCALHOST_ONLY = ("the server probably listens on 127.0.0.1 only, which only a port-forward reaches "
                  "(--transport port-forward, spec.parameters.transport: port-forward), or the port is wrong "
                  "(set it with the pod annotation debugcap.io/pprof-port or --pprof-port)")
# What only Go's pprof index page says (net/http/pprof's Index): its title, its links and its heading.
INDEX_MARKS = (b"/debug/pprof/", b"Types of profiles available")


class Reach(enum.Enum):
    """What a TCP connect to an address said."""

    OPEN = "open"  # something accepted the connection
    REFUSED = "refused"  # the address answered, nothing listens on the port
    UNREACHABLE = "unreachable"  # no route, or no answer in time


class Unreachable(errors.CollectorError):
    """The pod's port was not reached; ``refused``: its address answered that nothing listens
    there (proof that nothing serves on that port of the pod IP), else no route, no answer."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def reach(host: str, port: int, timeout: float) -> tuple[Reach, str]:
    """Connect to ``host:port`` and close at once: whether it answers, and why not in words.

    Not used by the transports (a bare TCP connect proves nothing: a mTLS sidecar accepts and
    resets every request, so auto asks for the pprof index instead); kept as the e2e tests'
    check that the testbed's host routes to pod IPs."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return Reach.OPEN, ""
    except OSError as exc:
        return classify(exc)


def classify(exc: OSError) -> tuple[Reach, str]:
    """A failed connect as :class:`Reach` and a short reason."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return Reach.REFUSED, "connection refused"
    if isinstance(exc, TimeoutError):
        return Reach.UNREACHABLE, "no answer in time"
    return Reach.UNREACHABLE, errors.shorten(exc.strerror or str(exc) or type(exc).__name__, 120)


def in_cluster(api_host: str) -> bool:
    """Whether this process runs in a pod of the cluster whose API server is ``api_host``: the
    kubelet gives every pod ``KUBERNETES_SERVICE_HOST``, and in-cluster credentials name that
    address. Only then are pod IPs this cluster's own to connect to (a laptop on a VPN may route
    an overlapping range elsewhere, or nowhere)."""
    service = os.environ.get("KUBERNETES_SERVICE_HOST", "").strip("[]")
    return bool(service) and urlsplit(api_host).hostname == service.lower()


def looks_like_index(body: bytes) -> bool:
    """Whether ``body`` is Go's pprof index page (not a sidecar's, a proxy's or another server's answer)."""
    return any(mark in body for mark in INDEX_MARKS)


class _Stale(Exception):
    """A kept-alive connection the server had already closed: retry on another one."""


class _TimedReads(io.RawIOBase):
    """Reads from a socket with its timeout set, before each recv, to what is left before
    ``deadline``: a recv restarts the socket's own timeout, a deadline it cannot restart."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline
        self._io = sock.makefile("rb", buffering=0)  # holds the socket open for the response, as http.client does

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self._sock.settimeout(left)
        return self._io.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._io.close()
        super().close()


_reading = threading.local()  # .deadline: the one of the request this thread reads an answer of


class _Response(http.client.HTTPResponse):
    """An answer read under its request's deadline (see :class:`_TimedReads`), headers included."""

    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None) -> None:
        super().__init__(sock, debuglevel, method, url)
        deadline: float | None = getattr(_reading, "deadline", None)
        if deadline is not None:
            self.fp.close()
            self.fp = io.BufferedReader(_TimedReads(sock, deadline))


class Pool:
    """Kept-alive HTTP/1.1 connections to one HTTP server; subclasses say how to connect, what
    request target a path becomes, and which answers are the transport's own errors."""

    kind = ""  # the manifest's access.http

    def __init__(self, target: str) -> None:
        self.target = target  # for messages: 'port 6060 of pod "x" in namespace "y"'
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._busy: set[http.client.HTTPConnection] = set()
        self._opening: set[http.client.HTTPConnection] = set()  # being connected
        self._closed = False
        self.connections_opened = 0

    # -- what subclasses provide
    def _connection(self, deadline: float) -> http.client.HTTPConnection:
        """A new connection, not connected yet: its ``connect()`` ends by ``deadline`` (the
        request's), or fails with an OSError."""
        raise NotImplementedError

    def _request_target(self, path: str) -> str:
        return path

    def _headers(self) -> Mapping[str, str]:
        return {"Accept-Encoding": "identity"}

    def _own_error(self, path: str, resp: http.client.HTTPResponse) -> tuple[errors.DebugcapError | None, bytes]:
        """An answer that is the transport's, not the pod's (the API server's 403): the error to
        raise. Otherwise None and the bytes of the body already read, which the caller keeps."""
        return None, b""

    def _failed(self, path: str, exc: Exception) -> errors.CollectorError:
        return errors.CollectorError(f"cannot reach {self.target}: {errors.shorten(str(exc) or type(exc).__name__)}")

    # -- the pool
    def access(self) -> dict[str, str]:
        return {"http": self.kind}

    def open(self) -> None:
        """Nothing to open ahead: a connection costs one TCP (and TLS) handshake, paid by the first GET."""

    def get(self, path: str, sink: IO[bytes], *, timeout: float = 60.0, max_bytes: int = 256 << 20,
            sent: Callable[[], None] | None = None) -> HttpResult:
        """GET ``path``; the body streams into ``sink`` (capped at ``max_bytes``). ``sent`` is called
        once the request has gone out. The whole GET ends within ``timeout``, or fails."""
        deadline = time.monotonic() + timeout
        while True:
            conn, reused = self._acquire(deadline)
            keep = False
            try:
                result, keep = self._request(conn, path, sink, deadline, timeout, max_bytes, reused, sent)
                return result
            except _Stale:
                continue  # nothing was written to the sink: ask again on a new connection
            finally:
                self._release(conn, keep)

    def _acquire(self, deadline: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            self._check_open()
            if self._idle:
                conn = self._idle.pop()
                self._busy.add(conn)
                return conn, True
        try:
            conn = self._connection(deadline)
        except (http.client.HTTPException, OSError) as exc:
            raise self._failed("", exc) from exc
        conn.auto_open = 0  # once closed, a connection stays closed (a GET after close() fails)
        conn.response_class = _Response
        with self._lock:
            self._check_open()
            self._opening.add(conn)  # close() shuts it down mid-handshake (a proxy's CONNECT, TLS)
        connected = False
        try:
            _reading.deadline = deadline  # a proxy's answer to CONNECT is read under it too
            conn.connect()
            connected = True
        except (http.client.HTTPException, OSError) as exc:
            with self._lock:
                self._check_open()
            raise self._failed("", exc) from exc
        finally:
            _reading.deadline = None
            with self._lock:
                self._opening.discard(conn)
            if not connected:
                conn.close()
        with self._lock:
            self.connections_opened += 1
            if self._closed:
                conn.close()
                self._check_open()
            self._busy.add(conn)
        return conn, False

    def _check_open(self) -> None:
        if self._closed:
            raise errors.CollectorError(f"connections to {self.target} closed: capture over")

    def _arm(self, conn: http.client.HTTPConnection, deadline: float) -> None:
        """Give the connection's socket what is left of the request's time, unless the pool was
        closed (then the request fails): under the lock, so close() cannot come in between."""
        with self._lock:
            self._check_open()
            sock = conn.sock
            if sock is None:
                raise http.client.NotConnected("the connection was closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(left)

    def _release(self, conn: http.client.HTTPConnection, keep: bool) -> None:
        with self._lock:
            self._busy.discard(conn)
            if keep and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def _late(self, path: str, timeout: float, written: int) -> errors.CollectorError:
        got = f" ({written} bytes of the body came)" if written else ""
        return errors.CollectorError(f"GET {path} from {self.target} did not finish within {timeout:.0f}s{got}; "
                                     "raise the timeout (timeoutSeconds / --timeout)")

    def _request(self, conn: http.client.HTTPConnection, path: str, sink: IO[bytes], deadline: float, timeout: float,
                 max_bytes: int, reused: bool, sent: Callable[[], None] | None) -> tuple[HttpResult, bool]:
        started = time.monotonic()
        try:
            self._arm(conn, deadline)
            conn.request("GET", self._request_target(path), headers=self._headers())
            if sent is not None:
                sent()
            _reading.deadline = deadline
            try:
                resp = conn.getresponse()
            finally:
                _reading.deadline = None
        except (http.client.HTTPException, OSError) as exc:
            self._check_open()
            # A timeout is no sign of a closed connection, and asking again would repeat a CPU
            # profile on a pod already too slow to answer one.
            if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                raise self._late(path, timeout, 0) from exc
            if reused:
                raise _Stale(str(exc)) from exc
            raise self._failed(path, exc) from exc
        written, truncated = 0, False
        chunk = b""
        try:
            own, chunk = self._own_error(path, resp)
            if own is not None:
                raise own
            while True:
                if not chunk:
                    if time.monotonic() >= deadline:
                        raise self._late(path, timeout, written)
                    chunk = resp.read1(CHUNK)  # what has come, at most CHUNK: never waits for a full buffer
                    if not chunk:
                        resp.close()  # read1 leaves an ended body open: the connection could not be reused
                        break
                room = max_bytes - written
                if len(chunk) > room:
                    chunk, truncated = chunk[:room], True
                sink.write(chunk)
                written += len(chunk)
                chunk = b""
                if truncated:
                    break
        except (http.client.HTTPException, OSError) as exc:
            self._check_open()
            if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                raise self._late(path, timeout, written) from exc
            raise errors.CollectorError(f"GET {path} from {self.target} broke off after {written} bytes: "
                                        f"{errors.shorten(str(exc) or type(exc).__name__)}") from exc
        result = HttpResult(status=resp.status, headers={k.lower(): v for k, v in resp.getheaders()},
                            body_bytes=written, truncated=truncated, duration_s=time.monotonic() - started)
        return result, not truncated and not resp.will_close

    def close(self) -> None:
        """Close every connection, those still carrying a request too: it fails at once."""
        with self._lock:
            self._closed = True
            idle, in_use = self._idle, [*self._busy, *self._opening]
            self._idle, self._busy = [], set()
        for conn in [*idle, *in_use]:
            sock = conn.sock
            if sock is not None:
                # Closing does not wake a recv() blocked in another thread; shutting down does.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        # A connection in use is closed by the thread using it (_acquire, _release), which now
        # fails with an OSError: closing it here would take its socket away mid-call (http.client
        # then meets None, an AttributeError, not a clean failure).
        for conn in idle:
            conn.close()


class Direct(Pool):
    """GETs to the pod IP itself: no API server, no kubelet on the way."""

    kind = "direct"

    def __init__(self, *, namespace: str, pod: str, host: str, port: int,
                 connect_timeout: float = DIRECT_CONNECT_SECONDS) -> None:
        super().__init__(f'port {port} of pod "{pod}" in namespace "{namespace}" at {host or "(no IP)"}')
        self.host, self.port, self.connect_timeout = host, port, connect_timeout

    def _connection(self, deadline: float) -> http.client.HTTPConnection:
        if not self.host:
            raise errors.CollectorError(f"{self.target}: the pod has no IP (status.podIP) to connect to yet")
        left = max(deadline - time.monotonic(), 0.001)
        return http.client.HTTPConnection(self.host, self.port, timeout=min(left, self.connect_timeout))

    def _failed(self, path: str, exc: Exception) -> errors.CollectorError:
        if isinstance(exc, errors.CollectorError):
            return exc
        if isinstance(exc, OSError):
            kind, why = classify(exc)
            if kind is Reach.REFUSED:
                return Unreachable(f"nothing listens on {self.target} (connection refused); {LOCALHOST_ONLY}",
                                   refused=True)
            if not path:  # the connect failed
                return Unreachable(
                    f"cannot connect to {self.target} ({why}): this machine cannot route to pod IPs; use "
                    "--transport proxy or port-forward (spec.parameters.transport), or auto to pick one",
                    refused=False)
        return super()._failed(path, exc)
