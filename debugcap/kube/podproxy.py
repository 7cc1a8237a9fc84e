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
credentials, TLS settings and proxy (``proxy-url``, bypassed for hosts in ``no_proxy`` as the
client does; HTTP CONNECT only: a SOCKS proxy is refused) instead. The body and timeouts are
:class:`debugcap.kube.podhttp.Pool`'s, deadline included.
"""

from __future__ import annotations

import http.client
import json
import ssl
from urllib.parse import SplitResult, urlsplit

from kubernetes.client.rest import is_socks_proxy_url, should_bypass_proxies

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube.client import Kube, segment
from debugcap.kube.podhttp import LOCALHOST_ONLY, Pool, Unreachable

# Longest wait for a connection (TCP, TLS) to the API server.
CONNECT_SECONDS = 15.0
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


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against ``server_name`` when the kubeconfig sets
    ``tls-server-name`` (an API server reached by IP), else against the host as usual."""

    def __init__(self, host: str, port: int | None, *, context: ssl.SSLContext, timeout: float,
                 server_name: str | None) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls, self._server_name = context, server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, and the CONNECT of a proxy when there is one
        tunnel_host: str | None = getattr(self, "_tunnel_host", None)  # set_tunnel's host (a proxy's CONNECT)
        hostname = self._server_name or tunnel_host or self.host
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=hostname)


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

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        conf = self.kube.configuration
        api = urlsplit(conf.host)
        via = proxy_of(conf.host, conf.proxy, conf.no_proxy)
        if via is not None:
            host, port = via.hostname or "", _port(via, "proxy-url")
        else:
            host, port = api.hostname or "", _port(api, "server")
        seconds = min(timeout, CONNECT_SECONDS)
        conn: http.client.HTTPConnection
        if api.scheme == "https":
            conn = _TLSConnection(host, port, context=self.kube._tls_context(), timeout=seconds,
                                  server_name=conf.tls_server_name or None)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=seconds)
        if via is not None:
            conn.set_tunnel(api.hostname or "", _port(api, "server"), headers=dict(conf.proxy_headers or {}))
        conn.connect()
        return conn

    def _api_path(self, path: str) -> str:
        """The pods/proxy path of ``path``, as messages name it."""
        return self.prefix + (path if path.startswith("/") else "/" + path)

    def _request_target(self, path: str) -> str:
        return self.base + self._api_path(path)

    def _headers(self) -> dict[str, str]:
        # The API server authenticates the request and removes Authorization before proxying it.
        out = {"Accept-Encoding": "identity"}
        token = self.kube.headers().get("authorization")
        if token:
            out["Authorization"] = token
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
        # path is "" when the connection itself failed: the message names the pods/proxy object either way.
        plain = kube_errors.from_transport("GET", self._api_path(path or "/"), self.kube.configuration.host, exc)
        return errors.CollectorError(str(plain))


def proxy_of(api_host: str, proxy: str | None, no_proxy: str | None) -> SplitResult | None:
    """The HTTP proxy a connection to ``api_host`` goes through, as the kubernetes client picks
    it (``proxy-url``, unless ``api_host`` matches ``no_proxy``); None for none."""
    if not proxy or should_bypass_proxies(api_host, no_proxy or ""):
        return None
    if is_socks_proxy_url(proxy):
        raise errors.CollectorError(
            f"the kubeconfig's proxy-url {proxy} is a SOCKS proxy, which the pods/proxy transport does not "
            "speak (HTTP CONNECT only); use --transport port-forward (spec.parameters.transport: port-forward)")
    return urlsplit(proxy)


def _port(url: SplitResult, field: str) -> int | None:
    try:
        return url.port
    except ValueError as exc:
        raise errors.CollectorError(f"the kubeconfig's {field} {url.geturl()} has no valid port "
                                    f"({errors.shorten(str(exc), 80)}); fix the {field} in the kubeconfig") from exc
