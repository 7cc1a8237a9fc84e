"""Kubernetes client configuration, loaded once and shared by the capture.

The capture path reads raw JSON through :meth:`Kube.request` and opens exec and
port-forward websockets from URLs, never through the generated ``CoreV1Api``:
building that class (pydantic-validated methods) and its models costs about 0.6 s
of CPU on first use, longer than everything else a CLI capture does besides its
profile window. Every failure leaves this package as a :class:`debugcap.errors.KubeError`
(:mod:`debugcap.kube.errors`): nothing outside :mod:`debugcap.kube` imports the client library.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import certifi
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.stream import ws_client
from websocket import WebSocket

from debugcap import errors
from debugcap.kube import errors as kube_errors


@dataclass(frozen=True)
class KubeTarget:
    """How to reach a cluster: a kubeconfig file and context, or in-cluster credentials."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    request_timeout: float = 30.0  # seconds for one request; 0: no limit (kubectl's --request-timeout=0)
    # kubectl's --as/--as-group: every request is made as this user and these groups (the
    # kubeconfig's own user needs the impersonate verb on them).
    impersonate_user: str | None = None
    impersonate_groups: tuple[str, ...] = ()


@dataclass
class Kube:
    """A loaded configuration and factories for API objects built on it."""

    configuration: k8s.Configuration
    default_namespace: str = "default"
    request_timeout: float = 30.0
    # Impersonate-User / Impersonate-Group header lines; a group per line, since the API server
    # reads each line as one group (a comma-joined value would be one group named "a,b").
    impersonation: tuple[tuple[str, str], ...] = ()
    _shared: k8s.ApiClient | None = field(default=None, repr=False)
    _tls: ssl.SSLContext | None = field(default=None, repr=False)
    _tls_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, target: KubeTarget | None = None) -> Kube:
        target = target or KubeTarget()
        configuration = k8s.Configuration()
        namespace = "default"
        try:
            if target.in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)
                try:
                    with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh:
                        namespace = fh.read().strip() or namespace
                except OSError:
                    pass
            else:
                k8s_config.load_kube_config(config_file=target.kubeconfig, context=target.context,
                                            client_configuration=configuration)
                _, active = k8s_config.list_kube_config_contexts(config_file=target.kubeconfig)
                if target.context:
                    contexts, _ = k8s_config.list_kube_config_contexts(config_file=target.kubeconfig)
                    active = next((c for c in contexts if c["name"] == target.context), active)
                namespace = (active or {}).get("context", {}).get("namespace") or namespace
        except (ConfigException, OSError) as exc:
            where = target.kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise errors.ConfigError(
                f"cannot load Kubernetes credentials from {where}: {errors.shorten(str(exc))}; "
                "check the file, or pick a context with --context "
                '(list them with "kubectl config get-contexts")'
            ) from exc
        impersonation = ((("Impersonate-User", target.impersonate_user),) if target.impersonate_user else ()) + \
            tuple(("Impersonate-Group", group) for group in target.impersonate_groups)
        return cls(configuration=configuration, default_namespace=namespace,
                   request_timeout=target.request_timeout, impersonation=impersonation)

    def url(self, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
        """The API server URL of ``path`` (its segments already quoted with :func:`segment`)."""
        return self.configuration.host + path + (f"?{urlencode(list(query))}" if query else "")

    def headers(self) -> urllib3.HTTPHeaderDict:
        """What authenticates a request made without the generated API classes (client
        certificates are in the TLS settings instead), and who it impersonates. Refreshes
        exec-plugin tokens as they expire. A header dict that keeps repeated names apart."""
        out = urllib3.HTTPHeaderDict({"Accept": "application/json"})
        token = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            out["authorization"] = token
        for name, value in self.impersonation:
            out.add(name, value)
        return out

    def _api(self) -> k8s.ApiClient:
        """The one ApiClient (and its connection pool) every call shares, built on first use."""
        if self._shared is None:
            self._shared = k8s.ApiClient(self.configuration)
        return self._shared

    def websocket(self, path: str, query: Sequence[tuple[str, str]], *, timeout: float) -> WebSocket:
        """Open an exec or port-forward websocket to ``path``; connecting and the handshake give up
        after ``timeout`` seconds (raises ``OSError`` or a ``websocket`` exception).

        ``ws_client.create_websocket`` has no connect timeout (a silent API server hung a capture
        until its deadline) and builds a new TLS context for every websocket, reading the CA and
        the client key from disk each time; a capture opens two per pod. Through a configured
        proxy the client's own ``create_websocket`` is used, without the connect timeout.
        """
        url = ws_client.get_websocket_url(self.url(path), list(query))
        conf = self.configuration
        if conf.proxy or conf.proxy_headers:
            if self.impersonation:
                # create_websocket sends only Authorization: the stream would run as the real user.
                raise errors.KubeError(f"cannot open {path} through the proxy {conf.proxy} while impersonating "
                                       "(--as): the client would drop the Impersonate headers; connect without "
                                       "the proxy, or use the impersonated user's own kubeconfig")
            proxied: WebSocket = ws_client.create_websocket(conf, url, self.headers())  # its proxy handling
            return proxied
        header = [f"sec-websocket-protocol: {ws_client.V5_CHANNEL_PROTOCOL},{ws_client.V4_CHANNEL_PROTOCOL}"]
        token = self.headers().get("authorization")
        if token:
            header.append(f"authorization: {token}")
        header += [f"{name}: {value}" for name, value in self.impersonation]
        sslopt: dict[str, Any] = {}
        if url.startswith("wss://"):
            sslopt["context"] = self._tls_context()
            if conf.tls_server_name:
                sslopt["server_hostname"] = conf.tls_server_name
        ws = WebSocket(sslopt=sslopt, skip_utf8_validation=False)
        ws.connect(url, header=header, timeout=timeout)
        return ws

    def _tls_context(self) -> ssl.SSLContext:
        """The client side of every websocket's TLS, as ``create_websocket`` would build it."""
        with self._tls_lock:
            if self._tls is None:
                conf = self.configuration
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                if conf.verify_ssl:
                    ctx.load_verify_locations(cafile=conf.ssl_ca_cert or certifi.where())
                    ctx.check_hostname = conf.assert_hostname is not False
                else:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                if conf.cert_file:
                    ctx.load_cert_chain(conf.cert_file, conf.key_file)
                self._tls = ctx
            return self._tls

    def request(self, method: str, path: str, query: Sequence[tuple[str, str]] = (), *, body: Any = None,
                content_type: str = "application/json", timeout: float | None = None,
                stream: bool = False) -> Any:
        """Send ``method path`` as raw JSON; the parsed answer (or, with ``stream``, the urllib3
        response, body not read yet: the caller releases it). Raises only
        :class:`~debugcap.errors.KubeError` and its subclasses, whose messages name the object
        and what to do next (:mod:`debugcap.kube.errors`)."""
        headers = self.headers()
        if body is not None:
            headers["Content-Type"] = content_type
        where = self.configuration.host
        try:
            resp = self._api().rest_client.request(method, self.url(path, query), headers=headers, body=body,
                                                    _request_timeout=timeout or self.request_timeout or None)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            # ApiException here is the REST client's own failure (TLS, a body it cannot send): status 0.
            raise kube_errors.from_transport(method, path, where, exc) from exc
        ok = 200 <= resp.status < 300
        if stream and ok:
            return resp.response
        try:
            data = resp.read()  # all of it, so the connection goes back to the pool
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise kube_errors.from_transport(method, path, where, exc) from exc
        finally:
            resp.response.release_conn()
        if not ok:
            raise kube_errors.from_response(method, path, resp.status, data.decode(errors="replace"),
                                            str(resp.reason or ""))
        return json.loads(data) if data else None

    def get(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any:
        """GET ``path``; the urllib3 response, body not read yet (the caller releases it)."""
        return self.request("GET", path, query, timeout=timeout, stream=True)

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any:
        return self.request("GET", path, query, timeout=timeout)

    def post_json(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        """Create the object ``body`` in the collection at ``path``; the object as created."""
        return self.request("POST", path, body=body, timeout=timeout)

    def delete(self, path: str, *, missing_ok: bool = False, timeout: float | None = None) -> None:
        """Delete the object at ``path``; with ``missing_ok``, one already gone is no error."""
        try:
            self.request("DELETE", path, timeout=timeout)
        except errors.NotFoundError:
            if not missing_ok:
                raise

    def merge_patch(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        """JSON merge-patch ``path`` (e.g. a ``/status`` subresource) with ``body``; the object as
        written. Raw JSON: the generated CustomObjectsApi validates and deep-copies every call,
        which the operator's frequent status writes paid for in CPU."""
        return self.request("PATCH", path, body=body, content_type="application/merge-patch+json", timeout=timeout)

    # The generated API classes below are for the tests and benchmarks, which build fixtures
    # with them; product code uses the raw-JSON methods above, which raise debugcap's errors.
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self._api())

    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self._api())

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self._api())


def segment(name: str) -> str:
    """One path segment (a namespace, a pod name) made safe for a URL."""
    return quote(name, safe="")


def core_path(resource: str, namespace: str | None = None, name: str | None = None,
              subresource: str | None = None) -> str:
    """``/api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]]``, each segment quoted."""
    return _path("/api/v1", resource, namespace, name, subresource)


def group_path(group: str, version: str, resource: str, namespace: str | None = None, name: str | None = None,
               subresource: str | None = None) -> str:
    """``/apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME[/SUB]]``, each segment quoted."""
    return _path(f"/apis/{group}/{version}", resource, namespace, name, subresource)


def _path(root: str, resource: str, namespace: str | None, name: str | None, subresource: str | None) -> str:
    parts = [root]
    if namespace is not None:
        parts += ["namespaces", segment(namespace)]
    parts.append(resource)
    if name is not None:
        parts.append(segment(name))
        if subresource:
            parts.append(subresource)
    return "/".join(parts)
