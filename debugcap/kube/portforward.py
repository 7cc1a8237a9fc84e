"""HTTP GET to a port inside a pod, through the Kubernetes port-forward API.

pprof endpoints must never be exposed through a Service (anyone reaching
them can profile or stall the process), so debugcap reaches them the way
``kubectl port-forward`` does. The kubelet's runtime dials ``localhost:<port>``
inside the pod's network namespace, so a server bound to 127.0.0.1 is reached
too. A pprof profile holds its connection for its whole duration, so requests
that overlap get forwards of their own; later requests reuse them (keep-alive).
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from kubernetes.client.exceptions import ApiException
from kubernetes.stream import ws_client

from debugcap import errors
from debugcap.kube.client import Kube, segment

CHUNK = 256 << 10
# How long the proxy thread gets to close its websocket after our side closed (judgement call:
# it takes milliseconds; the bound only matters if the thread is stuck).
PROXY_EXIT_SECONDS = 2.0
PROXY_THREAD_PREFIX = "Kubernetes port forward proxy"

logger = logging.getLogger(__name__)
_hook_lock = threading.Lock()
_hook_installed = False


def _install_proxy_error_hook() -> None:
    """Keep the client's proxy thread from printing a traceback when the API server hangs up.

    When nothing listens on the port, the kubelet reports it and the API server closes the
    websocket while the client's proxy thread may still be sending our request; that thread has
    no handler and dies with ``SSLEOFError``/``BrokenPipeError`` on stderr. The failure itself
    reaches the caller as a refused connection, so the thread's socket error is only logged.
    """
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        previous = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            name = args.thread.name if args.thread is not None else ""
            if name.startswith(PROXY_THREAD_PREFIX) and isinstance(args.exc_value, OSError):
                logger.debug("port-forward proxy thread %s ended: %r", name, args.exc_value)
                return
            previous(args)

        threading.excepthook = hook
        _hook_installed = True


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    truncated: bool = False
    duration_s: float = 0.0


class _Forward:
    """One port-forward stream carrying one HTTP/1.1 connection, kept alive between requests."""

    def __init__(self, kube: Kube, *, namespace: str, pod: str, port: int, timeout: float) -> None:
        self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
        self.port = port
        self.used = False
        _install_proxy_error_hook()
        url = kube.url(f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}/portforward")
        try:
            self.pf = ws_client.portforward_call(kube.configuration, "GET", url, query_params=[("ports", str(port))],
                                                 headers=kube.headers())
        except ApiException as exc:
            raise errors.CollectorError(
                f"cannot port-forward to {self.target}: {errors.shorten(str(exc.reason or exc))}; "
                f'check the pod is Running with "kubectl get pod {pod} -n {namespace}"'
            ) from exc
        self.conn = http.client.HTTPConnection("localhost", port, timeout=timeout)
        sock = self.pf.socket(port)
        sock.settimeout(timeout)
        self.conn.sock = sock

    def get(self, path: str, sink: IO[bytes], timeout: float, max_bytes: int) -> tuple[HttpResult, bool]:
        """GET ``path``; returns the result and whether the connection may carry another request."""
        started = time.monotonic()
        reused, self.used = self.used, True
        assert self.conn.sock is not None
        self.conn.sock.settimeout(timeout)
        try:
            self.conn.request("GET", path, headers={"Accept-Encoding": "identity"})
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError) as exc:
            if reused:
                raise _Stale(str(exc)) from exc
            raise errors.CollectorError(_refused_message(self.pf, self.port, self.target, exc)) from exc
        written, truncated = 0, False
        deadline = started + timeout
        while True:
            if time.monotonic() > deadline:
                raise errors.CollectorError(f"GET {path} from {self.target} did not finish within {timeout:.0f}s; "
                                            "raise the timeout (timeoutSeconds / --timeout)")
            try:
                chunk = resp.read(CHUNK)
            except (http.client.HTTPException, OSError) as exc:
                raise errors.CollectorError(f"GET {path} from {self.target} broke off after {written} bytes: "
                                            f"{errors.shorten(str(exc))}") from exc
            if not chunk:
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
        return result, not truncated and not resp.will_close

    def close(self) -> None:
        self.conn.close()
        self.pf.close()
        # The client's proxy thread closes the websocket itself once it sees our socket closed.
        # Closing it under the thread's feet while it still sends crashes that thread (a traceback
        # on stderr), so give it a moment first, then close whatever is left.
        give_up = time.monotonic() + PROXY_EXIT_SECONDS
        while self.pf.websocket.connected and time.monotonic() < give_up:
            time.sleep(0.01)
        self.pf.websocket.close()


class _Stale(Exception):
    """A kept-alive connection the server had already closed: retry on a new one."""


class Pool:
    """HTTP GETs to one port of one pod over a few port-forwards, reused with HTTP keep-alive.

    Requests that overlap in time (the CPU profile, the trace and the goroutine dump of one
    window) each get a forward of their own; the requests after them reuse those forwards
    instead of each paying for a new stream through the API server and the kubelet.
    """

    def __init__(self, kube: Kube, *, namespace: str, pod: str, port: int, size: int = 0) -> None:
        """``size``: most forwards open at once, 0 for no limit. A request waits for a free forward
        at the limit, so it must exceed the number of requests that have to run at the same moment."""
        self.kube, self.namespace, self.pod, self.port = kube, namespace, pod, port
        self.size = size
        self._cond = threading.Condition()
        self._idle: list[_Forward] = []
        self._open = 0
        self._closed = False

    def get(self, path: str, sink: IO[bytes], *, timeout: float = 60.0, max_bytes: int = 256 << 20) -> HttpResult:
        """GET ``path``; the body streams into ``sink`` (capped at ``max_bytes``)."""
        while True:
            fwd = self._acquire(timeout)
            keep = False
            try:
                result, keep = fwd.get(path, sink, timeout, max_bytes)
                return result
            except _Stale:
                continue  # nothing was written to the sink: ask again on another forward
            finally:
                self._release(fwd, keep)

    def _acquire(self, timeout: float) -> _Forward:
        with self._cond:
            while not self._idle and self.size and self._open >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return _Forward(self.kube, namespace=self.namespace, pod=self.pod, port=self.port, timeout=timeout)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _release(self, fwd: _Forward, keep: bool) -> None:
        with self._cond:
            keep = keep and not self._closed
            if keep:
                self._idle.append(fwd)
            else:
                self._open -= 1
            self._cond.notify()
        if not keep:
            fwd.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for fwd in idle:
            fwd.close()


def get(kube: Kube, *, namespace: str, pod: str, port: int, path: str, sink: IO[bytes], timeout: float = 60.0,
        max_bytes: int = 256 << 20) -> HttpResult:
    """One GET of ``path`` from ``pod:port`` over a port-forward of its own."""
    pool = Pool(kube, namespace=namespace, pod=pod, port=port)
    try:
        return pool.get(path, sink, timeout=timeout, max_bytes=max_bytes)
    finally:
        pool.close()


def _refused_message(pf: Any, port: int, target: str, exc: Exception) -> str:
    detail = ""
    for _ in range(20):
        # The proxy thread records the kubelet's error a moment after the socket closes.
        detail = pf.error(port) or ""
        if detail:
            break
        time.sleep(0.05)
    if "refused" in detail or isinstance(exc, ConnectionRefusedError):
        return (f"nothing listens on {target} (connection refused); set the pprof port with the pod "
                "annotation debugcap.io/pprof-port or --pprof-port")
    return f"cannot reach {target}: {errors.shorten(detail or str(exc) or type(exc).__name__)}"
