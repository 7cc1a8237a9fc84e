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
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from debugcap import errors
from debugcap.kube.client import Kube
from debugcap.kube.portforward_tunnel import BUFFER_BYTES, CONNECT_SECONDS, DRAIN_BYTES
from debugcap.kube.portforward_tunnel import Connection as _Connection
from debugcap.kube.portforward_tunnel import Tunnel as _Tunnel

__all__ = ["AHEAD_FRESH_SECONDS", "BUFFER_BYTES", "CHUNK", "CONNECT_SECONDS", "DRAIN_BYTES", "HttpResult", "Pool",
           "Refused", "get"]

CHUNK = 256 << 10
# Longest a connection opened ahead of its first request is used (see Pool.open): Go servers are
# often given a ReadHeaderTimeout of 5-10 s, which closes a connection that has sent nothing.
AHEAD_FRESH_SECONDS = 3.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    truncated: bool = False
    duration_s: float = 0.0


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
        self._retiring: set[_Tunnel] = set()  # given up on (see _release): no connection of theirs is kept
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
            self._opened += 1
            late = self._closed  # closed while it was being opened: close() did not see it
            if late:
                self._live -= n
            else:
                self._tunnels.append(tunnel)
                first, *rest = tunnel.connections
                self._idle.extend((c, False) for c in rest)
            self._cond.notify_all()
        if late:
            tunnel.close()
            raise errors.CollectorError(f"port-forward to pod {self.namespace}/{self.pod} closed: capture over")
        return first, False

    def _release(self, conn: _Connection, keep: bool) -> None:
        done: _Tunnel | None = None
        with self._cond:
            tunnel = conn.tunnel
            if keep and not self._closed and tunnel not in self._retiring:
                self._idle.append((conn, True))
            else:
                self._live -= 1
                given_up = not keep and not conn.ended  # cut at its cap or timed out: its body still comes
                conn.drop()  # nothing more of it is read
                if given_up and tunnel not in self._retiring:
                    # No new request goes to its tunnel: it is to close, not to be drained until the
                    # capture ends. Its idle connections go with it; one in use (a CPU profile) is
                    # not kept when its request ends (above), or the next request would take it.
                    self._retiring.add(tunnel)
                    spare = [c for c, _ in self._idle if c.tunnel is tunnel]
                    self._idle = [(c, used) for c, used in self._idle if c.tunnel is not tunnel]
                    self._live -= len(spare)
                    for c in spare:
                        c.drop()
                # Closed once none of its connections is in use: a request on a sibling ends first,
                # and meanwhile the tunnel's reader closes it if the one given up on sends more
                # than DRAIN_BYTES.
                if tunnel in self._tunnels and all(c.dropped for c in tunnel.connections):
                    self._tunnels.remove(tunnel)
                    self._retiring.discard(tunnel)
                    done = tunnel
            self._cond.notify_all()
        if done is not None:
            done.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            tunnels, self._tunnels, self._idle = self._tunnels, [], []
            self._retiring.clear()
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

