"""The HTTP transports without a websocket: pods/proxy answers, connect failures, auto's order.

Cases:
* only the API server's own v1.Status answers are errors; the pod's answers (a text 404, a JSON
  body of its own, a 500 "already in use") are passed on for the collectors to judge;
* 401/403 on pods/proxy is a ForbiddenError (and a CollectorError) naming ``get pods/proxy``;
  503 "connection refused" says the server probably listens on 127.0.0.1 only; other 503s say
  the API server cannot reach the pod;
* a failed connect is refused or unreachable; auto tries direct (in the cluster only), else
  proxy, else port-forward;
* the proxied request target quotes the pod name and keeps the query;
* the keep-alive pool against a real local HTTP server: connections reused, a body cut at
  max_bytes, a connection the server closed is replaced, close() ends a GET still running;
* auto in the cluster takes direct when the pod IP answers with the pprof index (and reports
  nothing before a GET), else falls back to port-forward when pods/proxy fails too, saying why
  in httpFallback (tests/unit/capture/test_transport_choice.py has the rest of auto's choice).
"""

from __future__ import annotations

import errno
import http.server
import io
import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from debugcap import errors
from debugcap.capture import transport
from debugcap.collectors import base
from debugcap.kube import podhttp, podproxy, portforward
from debugcap.kube.client import Kube
from debugcap.kube.podhttp import Reach

PROXY_PATH = "/api/v1/namespaces/prod/pods/api-1:6060/proxy/debug/pprof/heap"
TARGET = 'port 6060 of pod "api-1" in namespace "prod"'


def _status(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


# ---------------------------------------------------------------- whose answer is it


def test_only_the_api_servers_own_status_answers_are_errors() -> None:
    forbidden = _status(403, "Forbidden", "pods \"api-1\" is forbidden")
    assert podproxy.api_status(403, "application/json", forbidden) == ('pods "api-1" is forbidden', "Forbidden")
    assert podproxy.api_status(404, "text/plain; charset=utf-8", b"404 page not found\n") is None
    assert podproxy.api_status(500, "application/json", b'{"kind": "Status", "apiVersion": "app/v2"}') is None
    assert podproxy.api_status(500, "application/json", b'{"error": "boom"}') is None
    assert podproxy.api_status(500, "application/json", b"not json") is None
    assert podproxy.api_status(200, "application/json", forbidden) is None  # a 2xx is always the pod's


@pytest.mark.parametrize("code", [401, 403])
def test_forbidden_names_get_on_pods_proxy_and_is_a_collector_error_too(code: int) -> None:
    exc = podproxy.proxy_error(PROXY_PATH, code, _status(code, "Forbidden", "user cannot get pods/proxy"), TARGET)
    assert isinstance(exc, errors.ForbiddenError) and isinstance(exc, errors.CollectorError)
    assert isinstance(exc, podproxy.ProxyForbidden) and exc.status == code
    assert str(exc).startswith('cannot get pods/proxy "api-1:6060" in namespace "prod": user cannot get pods/proxy')
    if code == 403:
        assert "kubectl auth can-i get pods/proxy -n prod" in str(exc)


def test_refused_upstream_says_the_server_probably_listens_on_localhost_only() -> None:
    body = _status(503, "ServiceUnavailable",
                   "error trying to reach service: dial tcp 10.1.2.3:6060: connect: connection refused")
    exc = podproxy.proxy_error(PROXY_PATH, 503, body, TARGET)
    assert isinstance(exc, podproxy.ProxyUnreachable) and exc.refused
    assert "127.0.0.1 only" in str(exc) and "--transport port-forward" in str(exc)
    assert "dial tcp 10.1.2.3:6060" in str(exc)


def test_other_upstream_failures_say_the_api_server_cannot_reach_the_pod() -> None:
    body = _status(503, "ServiceUnavailable", "error trying to reach service: dial tcp 10.1.2.3:6060: i/o timeout")
    exc = podproxy.proxy_error(PROXY_PATH, 503, body, TARGET)
    assert isinstance(exc, podproxy.ProxyUnreachable) and not exc.refused
    assert str(exc).startswith(f"the API server cannot reach {TARGET}: error trying to reach service")


def test_a_pod_gone_is_a_collector_error_naming_it() -> None:
    exc = podproxy.proxy_error(PROXY_PATH, 404, _status(404, "NotFound", 'pods "api-1" not found'), TARGET)
    assert type(exc) is errors.CollectorError
    assert 'pods "api-1" not found' in str(exc)


def test_request_target_quotes_the_pod_and_keeps_the_query() -> None:
    proxy = podproxy.Proxy(Kube(configuration=None), namespace="prod", pod="api-1", port=6060)  # type: ignore[arg-type]
    assert proxy._request_target("/debug/pprof/profile?seconds=30") == \
        "/api/v1/namespaces/prod/pods/api-1:6060/proxy/debug/pprof/profile?seconds=30"
    assert proxy.access() == {"http": "proxy"}


# ---------------------------------------------------------------- connects and auto's order


def test_failed_connects_are_refused_or_unreachable() -> None:
    assert podhttp.classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))[0] is Reach.REFUSED
    assert podhttp.classify(TimeoutError("timed out")) == (Reach.UNREACHABLE, "no answer in time")
    kind, why = podhttp.classify(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert (kind, why) == (Reach.UNREACHABLE, "No route to host")


def test_auto_tries_direct_only_in_the_cluster_then_proxy_then_port_forward() -> None:
    assert transport.to_try(True) == ("direct", "proxy", "port-forward")
    # From a laptop a pod IP may not route, or route to another machine: never tried there.
    assert transport.to_try(False) == ("proxy", "port-forward")


def test_reach_tells_a_listening_port_from_a_closed_one(server: http.server.ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    assert podhttp.reach("127.0.0.1", port, 2.0) == (Reach.OPEN, "")
    with _closed_port() as closed:
        assert podhttp.reach("127.0.0.1", closed, 2.0) == (Reach.REFUSED, "connection refused")


# ---------------------------------------------------------------- the pool, on a real local server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path == "/slow":
            _Handler.release.wait(10)
        body = b"x" * 1000 if self.path == "/big" else f"hello {self.path}".encode()
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/bye":
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _Handler.release.clear()
    yield srv
    _Handler.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


class _closed_port:  # noqa: N801 (used as a context manager, like a function)
    def __enter__(self) -> int:
        import socket
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))  # bound, not listening: a connect is refused
        port: int = self._sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def _direct(port: int) -> podhttp.Direct:
    return podhttp.Direct(namespace="prod", pod="api-1", host="127.0.0.1", port=port)


def test_gets_reuse_one_kept_alive_connection_and_pass_the_pods_answers_on(
        server: http.server.ThreadingHTTPServer) -> None:
    pool = _direct(server.server_address[1])
    try:
        sent: list[str] = []
        sink = io.BytesIO()
        res = pool.get("/debug/pprof/", sink, timeout=5, max_bytes=1 << 20, sent=lambda: sent.append("out"))
        assert (res.status, sink.getvalue(), sent) == (200, b"hello /debug/pprof/", ["out"])
        assert pool.get("/missing", io.BytesIO(), timeout=5, max_bytes=1 << 20).status == 404
        assert pool.connections_opened == 1 and pool.access() == {"http": "direct"}
    finally:
        pool.close()


def test_a_body_is_cut_at_max_bytes_and_a_closed_connection_replaced(server: http.server.ThreadingHTTPServer) -> None:
    pool = _direct(server.server_address[1])
    try:
        sink = io.BytesIO()
        res = pool.get("/big", sink, timeout=5, max_bytes=100)
        assert (res.truncated, res.body_bytes, len(sink.getvalue())) == (True, 100, 100)
        assert pool.get("/bye", io.BytesIO(), timeout=5, max_bytes=1 << 20).status == 200
        assert pool.get("/after", io.BytesIO(), timeout=5, max_bytes=1 << 20).status == 200
        assert pool.connections_opened == 3  # the cut one and the one the server closed were not reused
    finally:
        pool.close()


def test_close_ends_a_get_still_running(server: http.server.ThreadingHTTPServer) -> None:
    pool = _direct(server.server_address[1])
    failures: list[BaseException] = []
    out = threading.Event()

    def slow() -> None:
        try:
            pool.get("/slow", io.BytesIO(), timeout=30, max_bytes=1 << 20, sent=out.set)
        except errors.CollectorError as exc:
            failures.append(exc)

    worker = threading.Thread(target=slow)
    worker.start()
    assert out.wait(5)
    pool.close()
    worker.join(5)
    assert not worker.is_alive() and len(failures) == 1 and "closed: capture over" in str(failures[0])
    with pytest.raises(errors.CollectorError, match="closed: capture over"):
        pool.get("/", io.BytesIO(), timeout=5, max_bytes=10)


def test_direct_to_a_closed_port_says_the_server_may_listen_on_localhost_only() -> None:
    with _closed_port() as port:
        pool = _direct(port)
        with pytest.raises(errors.CollectorError, match=r"connection refused\); the server probably listens on 127"):
            pool.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=10)
        pool.close()


def test_direct_without_a_pod_ip_says_so() -> None:
    pool = podhttp.Direct(namespace="prod", pod="api-1", host="", port=6060)
    with pytest.raises(errors.CollectorError, match=r"the pod has no IP"):
        pool.get("/", io.BytesIO(), timeout=5, max_bytes=10)
    pool.close()


# ---------------------------------------------------------------- auto, without a cluster


def _target(ip: str, port: int) -> base.Target:
    return base.Target(namespace="prod", pod="api-1", container="app", pprof_port=port, pod_ip=ip)


def test_auto_picks_direct_when_the_pod_ip_answers_and_says_nothing_before_a_get(
        server: http.server.ThreadingHTTPServer) -> None:
    auto = transport.Auto(Kube(configuration=None), _target("127.0.0.1", server.server_address[1]),  # type: ignore[arg-type]
                          forwards=2, in_cluster=True)
    try:
        assert auto.access() == {}  # a template without Go collectors used no transport
        assert auto.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=1 << 20).status == 200
        assert auto.access() == {"http": "direct"}
    finally:
        auto.close()
    with pytest.raises(errors.CollectorError, match="closed: capture over"):
        auto.get("/", io.BytesIO(), timeout=5, max_bytes=10)


def test_auto_falls_back_to_port_forward_and_says_why() -> None:
    with _closed_port() as port:
        # No pod IP, and an API server that refuses connections: pods/proxy fails too.
        kube = Kube(configuration=k8s.Configuration(host=f"http://127.0.0.1:{port}"))
        auto = transport.Auto(kube, _target("", 6060), forwards=2, in_cluster=True)
        try:
            assert isinstance(auto.chosen(), portforward.Pool)
            assert auto.access() == {}  # chosen, but no GET made yet
            with pytest.raises(errors.CollectorError, match="cannot port-forward"):
                auto.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=10)
            access = auto.access()
        finally:
            auto.close()
    assert access["http"] == "port-forward"
    assert access["httpFallback"].startswith('direct: the pod has no IP; proxy: cannot get pods/proxy "api-1:6060" in '
                                             'namespace "prod": no answer from the API server ('), access
    assert "Connection refused" in access["httpFallback"], access


# ---------------------------------------------------------------- the kubeconfig's server URL and proxy


class _ApiServer(http.server.BaseHTTPRequestHandler):
    """Stands in for an API server's pods/proxy: Go's index under the proxy path, 404 elsewhere."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        _ApiServer.seen.append(self.path)
        ok = self.path.endswith(":6060/proxy/debug/pprof/")
        body = b"<title>/debug/pprof/</title>Types of profiles available:" if ok else b"404 page not found\n"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ApiServer)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _ApiServer.seen = []
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _proxy(host: str, **conf: str) -> podproxy.Proxy:
    kube = Kube(configuration=k8s.Configuration(host=host, **conf))  # type: ignore[arg-type]
    return podproxy.Proxy(kube, namespace="prod", pod="api-1", port=6060)


def test_the_api_servers_own_path_is_kept(api_server: int) -> None:
    """Rancher and other gateways serve a cluster's API under a path of their own."""
    proxy = _proxy(f"http://127.0.0.1:{api_server}/k8s/clusters/c-abc/")
    try:
        assert proxy.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=1 << 16).status == 200
    finally:
        proxy.close()
    assert _ApiServer.seen == ["/k8s/clusters/c-abc/api/v1/namespaces/prod/pods/api-1:6060/proxy/debug/pprof/"]


def test_no_proxy_bypasses_the_proxy_url_as_the_kubernetes_client_does(api_server: int) -> None:
    with _closed_port() as dead:
        proxy = _proxy(f"http://127.0.0.1:{api_server}", proxy=f"http://127.0.0.1:{dead}",
                       no_proxy="localhost,127.0.0.0/8")
        try:
            assert proxy.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=1 << 16).status == 200
        finally:
            proxy.close()
        # Not bypassed: the (dead) proxy is used.
        assert podproxy.proxy_of("https://api.example:6443", f"http://127.0.0.1:{dead}", "127.0.0.1") is not None
        assert podproxy.proxy_of("https://api.example:6443", f"http://127.0.0.1:{dead}", ".example") is None


def _failure(proxy: podproxy.Proxy, timeout: float = 5) -> str:
    try:
        with pytest.raises(errors.CollectorError) as caught:
            proxy.get("/debug/pprof/", io.BytesIO(), timeout=timeout, max_bytes=10)
    finally:
        proxy.close()
    return str(caught.value)


@pytest.mark.parametrize(("url", "kind"), [("socks5://127.0.0.1:1080", "a SOCKS proxy"),
                                           ("https://127.0.0.1:3128", "an https:// proxy")])
def test_a_proxy_other_than_plain_http_is_refused_naming_the_field_and_port_forward(url: str, kind: str) -> None:
    """pods/proxy speaks plain HTTP CONNECT only: an https:// proxy would be sent the CONNECT in
    plain text, a SOCKS one would not understand it."""
    message = _failure(_proxy("https://api.example:6443", proxy=url))
    assert f"the proxy {url} (kubeconfig proxy-url, or HTTPS_PROXY) is {kind}" in message
    assert "--transport port-forward" in message


def test_a_proxy_url_without_a_numeric_port_is_a_clear_error() -> None:
    message = _failure(_proxy("https://api.example:6443", proxy="http://proxy.example:eighty"))
    assert "the proxy http://proxy.example:eighty (kubeconfig proxy-url, or HTTPS_PROXY) has no valid port" in message


@pytest.mark.parametrize("url", ["http://alice:s3cret@proxy.example:31x8", "socks5://alice:s3cret@127.0.0.1:1080",
                                 "https://alice:s3cret@127.0.0.1:3128", "http://alice:s3cret@127.0.0.1:{closed}"])
def test_the_proxys_credentials_never_reach_a_message(url: str) -> None:
    """Messages end up in the manifest's access.httpFallback and the DebugCapture's status."""
    with _closed_port() as closed:
        message = _failure(_proxy("https://api.example:6443", proxy=url.format(closed=closed)))
    assert "s3cret" not in message and "alice" not in message, message
    assert "the proxy " in message and "(kubeconfig proxy-url, or HTTPS_PROXY)" in message, message


def test_a_proxy_and_a_server_without_ports_are_dialled_where_the_kubernetes_client_dials_them() -> None:
    """urllib3 dials port 80 of an http:// proxy without one (not the API server's 443)."""
    conn = _proxy("https://api.example", proxy="http://proxy.example")._connection(time.monotonic() + 5)
    assert (conn.host, conn.port) == ("proxy.example", 80)
    assert conn._via is not None and conn._via[:2] == ("api.example", 443)  # type: ignore[attr-defined]
    conn = _proxy("http://api.example")._connection(time.monotonic() + 5)
    assert (conn.host, conn.port) == ("api.example", 80)


# ---------------------------------------------------------------- through a local CONNECT proxy


class _ConnectProxy:
    """A raw HTTP CONNECT proxy on 127.0.0.1: records each CONNECT's head, then ``answer``s."""

    def __init__(self, answer: Callable[[_ConnectProxy, socket.socket], None]) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.got = threading.Event()  # a CONNECT came
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    got = conn.recv(4096)
                    if not got:
                        return
                    data += got
                self.heads.append(data)
                self.got.set()
                self.answer(self, conn)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def proxies() -> Iterator[list[_ConnectProxy]]:
    made: list[_ConnectProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def _connect_proxy(made: list[_ConnectProxy], answer: Callable[[_ConnectProxy, socket.socket], None]) -> _ConnectProxy:
    proxy = _ConnectProxy(answer)
    made.append(proxy)
    return proxy


def test_an_ipv6_api_server_is_bracketed_in_the_connect(proxies: list[_ConnectProxy]) -> None:
    via = _connect_proxy(proxies, lambda _p, conn: conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"))
    message = _failure(_proxy("http://[fd00::1]:8080", proxy=f"http://127.0.0.1:{via.port}"))
    assert via.heads[0].startswith(b"CONNECT [fd00::1]:8080 HTTP/1.1\r\nHost: [fd00::1]:8080\r\n"), via.heads
    # The proxy, not the API server, is named: the API server was never reached.
    assert f"through the proxy 127.0.0.1:{via.port} (kubeconfig proxy-url, or HTTPS_PROXY)" in message, message
    assert "HTTP 502" in message and "no answer from the API server" not in message, message


def test_a_slow_proxy_cannot_stretch_a_get_past_its_timeout(proxies: list[_ConnectProxy]) -> None:
    lines_sent: list[int] = []

    def answer(proxy: _ConnectProxy, conn: socket.socket) -> None:
        if proxy.stop.wait(0.9):
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n")
        for _ in range(8):  # 4 s of header lines, each well within a per-read timeout
            if proxy.stop.wait(0.5):
                return
            conn.sendall(b"X-A: b\r\n")
            lines_sent.append(1)
        conn.sendall(b"\r\n")
        proxy.stop.wait(10)  # then never answer the TLS ClientHello

    via = _connect_proxy(proxies, answer)
    message = _failure(_proxy("https://api.example:6443", proxy=f"http://127.0.0.1:{via.port}"), timeout=1)
    # It gave up while the proxy's answer was still coming (each line alone was in time).
    assert len(lines_sent) < 8, lines_sent
    assert f"through the proxy 127.0.0.1:{via.port}" in message and "timed out" in message, message


def test_close_ends_a_get_waiting_for_the_proxy(proxies: list[_ConnectProxy]) -> None:
    via = _connect_proxy(proxies, lambda proxy, _conn: proxy.stop.wait(30))  # never answers the CONNECT
    proxy = _proxy("https://api.example:6443", proxy=f"http://127.0.0.1:{via.port}")
    failures: list[Exception] = []

    def get() -> None:
        try:
            proxy.get("/debug/pprof/", io.BytesIO(), timeout=30, max_bytes=10)
        except errors.CollectorError as exc:
            failures.append(exc)

    worker = threading.Thread(target=get)
    worker.start()
    assert via.got.wait(5)
    proxy.close()
    worker.join(10)  # the proxy would keep it waiting 30 s: only close() can end it sooner
    assert not worker.is_alive()
    assert len(failures) == 1 and "closed: capture over" in str(failures[0]), failures


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate (and its key, in the same file) for api.example."""
    if shutil.which("openssl") is None:
        pytest.fail("needs the openssl command (apt-get install openssl; .ci/run installs it)", pytrace=False)
    pem = tmp_path / "api.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=api.example", "-addext", "subjectAltName=DNS:api.example",
                    "-keyout", str(pem), "-out", str(tmp_path / "c.pem")],
                   check=True, capture_output=True, timeout=60)
    pem.write_text(pem.read_text() + (tmp_path / "c.pem").read_text())
    return pem


def test_tls_to_the_api_server_goes_through_the_tunnel(proxies: list[_ConnectProxy], certificate: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certificate)
    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen(4)
    api_port = api.getsockname()[1]
    body = b"<title>/debug/pprof/</title>"

    def serve_api() -> None:
        conn, _ = api.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                data += tls.recv(4096)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            tls.recv(10)

    def relay(proxy: _ConnectProxy, conn: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", api_port)) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            while not proxy.stop.is_set():
                ready, _, _ = select.select([conn, upstream], [], [], 5)
                if not ready:
                    return
                for side in ready:
                    data = side.recv(65536)
                    if not data:
                        return
                    (upstream if side is conn else conn).sendall(data)

    threading.Thread(target=serve_api, daemon=True).start()
    via = _connect_proxy(proxies, relay)
    proxy = _proxy(f"https://api.example:{api_port}", proxy=f"http://127.0.0.1:{via.port}",
                   ssl_ca_cert=str(certificate))
    sink = io.BytesIO()
    try:
        assert proxy.get("/debug/pprof/", sink, timeout=10, max_bytes=1 << 16).status == 200
    finally:
        proxy.close()
        api.close()
    assert sink.getvalue() == body
    assert via.heads[0].startswith(b"CONNECT api.example:%d HTTP/1.1\r\n" % api_port)


def test_a_port_forward_reports_nothing_until_a_get_was_made() -> None:
    with _closed_port() as port:
        pool = portforward.Pool(Kube(configuration=k8s.Configuration(host=f"http://127.0.0.1:{port}")),
                                namespace="prod", pod="api-1", port=6060)
        try:
            pool.open()  # ahead, best effort: no GET yet
            assert pool.access() == {}
            with pytest.raises(errors.CollectorError):
                pool.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=10)
            assert pool.access() == {"http": "port-forward"}
        finally:
            pool.close()
