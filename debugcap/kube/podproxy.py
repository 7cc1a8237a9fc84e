"""HTTP GETs to a pod's port through the API server's ``pods/proxy`` subresource.

``GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH`` asks the API server to GET ``PATH`` from
``podIP:PORT`` and stream the answer back. It needs only ``get pods/proxy`` (a port-forward needs
``create pods/portforward``, an exec ``create pods/exec``), and costs the API server one proxied
request instead of a websocket stream through the kubelet and the runtime. The API server dials
the pod IP, so a server bound to 127.0.0.1 is not reached: only a port-forward reaches it.

Answers come from two places: the pod's server (its 404, its 500 "cpu profiling already in use",
given back as they are, like any transport does) and the API server itself (RBAC's 403, a pod
not found, 503 when it cannot reach the pod). The API server's own answers are ``v1.Status``
JSON objects; they become debugcap errors here, and never reach a collector as evidence.

``Kube.request`` is not used: it raises on every status >= 400 and drops the body, which the
collectors need (``X-Go-Pprof`` errors, the busy-profiler retry), and it cannot say when a
request has gone out (a CPU profile's window begins then). Requests go out over kept-alive
HTTP/1.1 connections with the client's own URL (its path too: ``server: https://rancher/k8s/clusters/c-1``),
credentials, TLS settings and proxy (``proxy-url``, else ``HTTPS_PROXY``, bypassed for hosts in
``no_proxy`` and dialled on port 80 without a port, as the client does; plain HTTP CONNECT only:
a SOCKS or https:// proxy is refused; its ``user:password@`` never reaches a message) instead.
The body and timeouts are :class:`debugcap.kube.podhttp.Pool`'s, deadline included: the connect
(TCP, the proxy's CONNECT, TLS) ends within it too.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from kubernetes.client.rest import is_socks_proxy_url, should_bypass_proxies

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube.client import Kube, segment
from debugcap.kube.podhttp import LOCALHOST_ONLY, Pool, Unreachable

# Longest wait for a connection (TCP, TLS) to the API server.
CONNECT_SECONDS = 15.0
# How messages name the proxy in front of the API server, which the kubernetes client takes from
# the kubeconfig's proxy-url or, without one, from HTTPS_PROXY (HTTP_PROXY for an http:// server).
PROXY_SOURCE = "(kubeconfig proxy-url, or HTTPS_PROXY)"
# The API server's own errors are small v1.Status objects: read this much of a JSON error body
# to tell one from the pod's answer.
STATUS_BYTES = 64 << 10


class ProxyForbidden(errors.ForbiddenError, errors.CollectorError):
    """401 or 403 on pods/proxy: a ForbiddenError (a caller choosing a transport moves on to the
    next) that is also the CollectorError every HTTP GET of a collector may raise."""


class ProxyUnreachable(Unreachable):
    """The API server answered but could not reach the pod's port (503 and the like);
    ``refused``: the pod IP answered and nothing listens there on that port."""


def api_status(status: int, content_type: str, body: bytes) -> tuple[str, str] | None:
    """The (message, reason) of an answer that is the API server's own ``v1.Status`` error,
    None for anything else (the pod's own answer, passed on as it is)."""
    if status < 400 or not content_type.lower().startswith("application/json"):
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("kind") != "Status" or doc.get("apiVersion") != "v1":
        return None
    return str(doc.get("message") or ""), str(doc.get("reason") or "")


def proxy_error(method_path: str, status: int, body: bytes, target: str) -> errors.CollectorError:
    """The error the API server's own ``status`` answer on ``method_path`` (a pods/proxy path) stands for."""
    text = body.decode(errors="replace")
    if status in (401, 403):
        plain = kube_errors.from_response("GET", method_path, status, text)
        return ProxyForbidden(str(plain), status=status, reason=plain.reason, api_message=plain.api_message)
    message, _reason = kube_errors.api_message(text)
    if status in (502, 503) and message:
        refused = "connection refused" in message
        if refused:
            return ProxyUnreachable(f"the API server found nothing listening on {target} ({errors.shorten(message)}); "
                                    f"{LOCALHOST_ONLY}", refused=True)
        return ProxyUnreachable(f"the API server cannot reach {target}: {errors.shorten(message)}", refused=False)
    return errors.CollectorError(str(kube_errors.from_response("GET", method_path, status, text)))


class _ProxyFailed(OSError):
    """The proxy in front of the API server could not be reached, or would not open the tunnel."""


class _ApiConnection(http.client.HTTPConnection):
    """A connection to the API server, through an HTTP CONNECT proxy when ``tunnel`` names the
    server's host and port, TLS when ``tls`` is given. Each phase (TCP, the proxy's CONNECT, the
    TLS handshake) gets only what is left before ``deadline``, the request's: a slow proxy
    cannot stretch a GET past its timeout. The certificate is checked against ``server_name``
    when the kubeconfig sets ``tls-server-name`` (an API server reached by IP), else the host."""

    def __init__(self, host: str, port: int, *, deadline: float, tls: ssl.SSLContext | None,
                 server_name: str | None, tunnel: tuple[str, int, dict[str, str]] | None, proxy_name: str) -> None:
        super().__init__(host, port, timeout=min(max(deadline - time.monotonic(), 0.001), CONNECT_SECONDS))
        self._deadline, self._tls, self._server_name = deadline, tls, server_name
        self._via, self._proxy_name = tunnel, proxy_name

    def connect(self) -> None:
        # self.sock is set at once, so the pool's close() can shut it down mid-handshake; the work
        # is done on the local ``sock``, which close() may shut down (the next call fails with
        # OSError) but cannot take away (self.sock = None would be an AttributeError here).
        try:
            sock = self.sock = socket.create_connection((self.host, self.port),
                                                        _left(self._deadline, CONNECT_SECONDS))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._via is not None:
                self._open_tunnel(sock, *self._via)
        except (http.client.HTTPException, OSError) as exc:
            if self._via is None:
                raise
            why = errors.shorten(str(exc) or type(exc).__name__, 200)
            raise _ProxyFailed(f"through {self._proxy_name}: {why}") from exc
        if self._tls is not None:
            sock.settimeout(_left(self._deadline))
            hostname = self._server_name or (self._via[0] if self._via is not None else self.host)
            self.sock = self._tls.wrap_socket(sock, server_hostname=hostname)

    def _open_tunnel(self, sock: socket.socket, host: str, port: int, headers: dict[str, str]) -> None:
        """``CONNECT host:port`` (an IPv6 address in brackets); its answer is read under the
        request's deadline (the pool reads with podhttp's timed reads)."""
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", *(f"{k}: {v}" for k, v in headers.items())]
        sock.settimeout(_left(self._deadline))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        resp = self.response_class(sock, method="CONNECT")
        try:
            resp.begin()
            if resp.status != 200:
                raise OSError(f"the proxy answered CONNECT {authority} with HTTP {resp.status} {resp.reason}".strip())
        finally:
            resp.close()  # its reader only; the socket carries the tunnel from now on


def _left(deadline: float, cap: float | None = None) -> float:
    """What is left before ``deadline`` (at most ``cap``); a deadline already past fails at once."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left if cap is None else min(left, cap)


class Proxy(Pool):
    """GETs to ``port`` of ``pod`` through the API server's pods/proxy."""

    kind = "proxy"

    def __init__(self, kube: Kube, *, namespace: str, pod: str, port: int) -> None:
        super().__init__(f'port {port} of pod "{pod}" in namespace "{namespace}"')
        self.kube = kube
        self.prefix = f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}:{port}/proxy"
        # The API server's URL may have a path of its own (Rancher: /k8s/clusters/c-abc), as Kube.url keeps.
        conf = kube.configuration
        self.base = urlsplit(conf.host).path.rstrip("/") if conf is not None else ""

    def _connection(self, deadline: float) -> http.client.HTTPConnection:
        conf = self.kube.configuration
        api = urlsplit(conf.host)
        api_port = _port(api, "server") or (443 if api.scheme == "https" else 80)
        via = proxy_of(conf.host, conf.proxy, conf.no_proxy)
        tunnel: tuple[str, int, dict[str, str]] | None = None
        if via is not None:
            # urllib3's ProxyManager, which the kubernetes client uses, dials port 80 of an http:// proxy without one.
            host, port = via.hostname or "", _port(via, "proxy-url") or 80
            tunnel = (api.hostname or "", api_port, dict(conf.proxy_headers or {}))
        else:
            host, port = api.hostname or "", api_port
        tls = self.kube._tls_context() if api.scheme == "https" else None
        return _ApiConnection(host, port, deadline=deadline, tls=tls, server_name=conf.tls_server_name or None,
                              tunnel=tunnel, proxy_name=f"the proxy {host}:{port} {PROXY_SOURCE}")

    def _api_path(self, path: str) -> str:
        """The pods/proxy path of ``path``, as messages name it."""
        return self.prefix + (path if path.startswith("/") else "/" + path)

    def _request_target(self, path: str) -> str:
        return self.base + self._api_path(path)

    def _headers(self) -> Mapping[str, str]:
        # The API server authenticates the request (and impersonates) and removes Authorization and
        # the Impersonate-* headers before proxying it.
        out = self.kube.headers()
        del out["Accept"]
        out["Accept-Encoding"] = "identity"
        return out

    def _own_error(self, path: str, resp: http.client.HTTPResponse) -> tuple[errors.DebugcapError | None, bytes]:
        content_type = resp.getheader("content-type") or ""
        if resp.status < 400 or not content_type.lower().startswith("application/json"):
            return None, b""
        head = resp.read(STATUS_BYTES)
        if api_status(resp.status, content_type, head) is None:
            return None, head
        return proxy_error(self._api_path(path), resp.status, head, self.target), head

    def _failed(self, path: str, exc: Exception) -> errors.CollectorError:
        if isinstance(exc, _ProxyFailed):  # the API server was not reached: say so, and what to check
            return errors.CollectorError(
                f"cannot get pods/proxy for {self.target} {exc}; the API server was not reached: check the "
                "proxy (port-forward goes through it too)")
        # path is "" when the connection itself failed: the message names the pods/proxy object either way.
        plain = kube_errors.from_transport("GET", self._api_path(path or "/"), self.kube.configuration.host, exc)
        return errors.CollectorError(str(plain))


def proxy_of(api_host: str, proxy: str | None, no_proxy: str | None) -> SplitResult | None:
    """The HTTP proxy a connection to ``api_host`` goes through, as the kubernetes client picks
    it (``proxy-url``, unless ``api_host`` matches ``no_proxy``); None for none."""
    if not proxy or should_bypass_proxies(api_host, no_proxy or ""):
        return None
    url = urlsplit(proxy)
    if is_socks_proxy_url(proxy) or url.scheme != "http":
        kind = ("a SOCKS proxy" if is_socks_proxy_url(proxy) else
                "an https:// proxy" if url.scheme == "https" else "not an http:// URL")
        raise errors.CollectorError(
            f"the proxy {without_userinfo(url)} {PROXY_SOURCE} is {kind}, which the pods/proxy transport "
            "does not speak (plain HTTP CONNECT only); use --transport port-forward "
            "(spec.parameters.transport: port-forward)")
    return url


def without_userinfo(url: SplitResult) -> str:
    """``url`` without ``user:password@``: a proxy's credentials never reach a message (errors end
    up in the manifest's access.httpFallback and the DebugCapture's status)."""
    host = url.netloc.rpartition("@")[2]
    return url._replace(netloc=host).geturl()


def _port(url: SplitResult, field: str) -> int | None:
    try:
        return url.port
    except ValueError as exc:
        what = f"the proxy {without_userinfo(url)} {PROXY_SOURCE}" if field == "proxy-url" else \
            f"the kubeconfig's {field} {without_userinfo(url)}"
        raise errors.CollectorError(f"{what} has no valid port "
                                    f"({errors.shorten(str(exc), 80)}); fix the {field} in the kubeconfig") from exc
