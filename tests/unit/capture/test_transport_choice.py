"""auto's choice of transport, and the operator's pprof check, against local sockets.

Cases:
* direct is tried only in the cluster's pod network (KUBERNETES_SERVICE_HOST names the API
  server in use); from elsewhere auto starts at pods/proxy and never connects to the pod IP;
* a pod port that accepts TCP and resets every request (a mTLS sidecar) is no pprof server:
  auto moves on to pods/proxy and says why, where a bare TCP connect would have said "direct";
* a pods/proxy answer that is not Go's pprof index (a 404 through a gateway) falls through to
  port-forward, the reason in httpFallback;
* close() ends a choice under way: the candidate being probed fails at once, and so do GETs
  waiting for the choice;
* the operator's pprof check fails the pod only on proof that nothing serves pprof there (a
  refused connection through each transport, a 404 for the index from the pod itself: not
  through pods/proxy, where a gateway may answer it); forbidden, unreachable, a reset or a
  timeout let the capture go on. A refusal through direct or pods/proxy may be a NetworkPolicy
  rejecting the connection: the message says so. A check that outlives its timeout does not
  hold the pod's capture (and its slot) beyond it.
"""

from __future__ import annotations

import errno
import http.server
import io
import socket
import struct
import threading
import time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client as k8s

from debugcap import errors, templates
from debugcap.capture import transport
from debugcap.collectors import base
from debugcap.kube import podhttp, podproxy, portforward
from debugcap.kube.client import Kube
from debugcap.kube.portforward import HttpResult
from debugcap.operator import capturing
from debugcap.operator.requests import CaptureRequest
from debugcap.settings import CaptureSettings

INDEX = b"<html><head><title>/debug/pprof/</title></head>Types of profiles available: <a href='heap?debug=1'>"
PROXIED = "/api/v1/namespaces/prod/pods/api-1:6060/proxy/debug/pprof/"


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    thread.join(5)


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``status`` and ``body``; records the paths."""

    protocol_version = "HTTP/1.1"
    status, body, seen = 200, INDEX, []  # type: tuple[int, bytes, list[str]]  # noqa: RUF012

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        type(self).seen.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


class _Pod(_Answer):
    seen: list[str] = []  # noqa: RUF012


class _Api(_Answer):
    seen: list[str] = []  # noqa: RUF012


@pytest.fixture
def pod() -> Iterator[int]:
    _Pod.status, _Pod.body, _Pod.seen = 200, INDEX, []
    yield from _serve(_Pod)


@pytest.fixture
def api() -> Iterator[int]:
    _Api.status, _Api.body, _Api.seen = 200, INDEX, []
    yield from _serve(_Api)


@pytest.fixture
def resetting() -> Iterator[int]:
    """A port that accepts TCP, reads the request and resets the connection, as a sidecar
    enforcing mTLS does to plain HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                conn.recv(4096)
            except OSError:
                pass
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # linger 0: RST

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    sock.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _target(port: int, ip: str = "127.0.0.1") -> base.Target:
    return base.Target(namespace="prod", pod="api-1", container="app", pprof_port=port, pod_ip=ip)


def _kube(api_port: int) -> Kube:
    return Kube(configuration=k8s.Configuration(host=f"http://127.0.0.1:{api_port}"))


def _choose(kube: Kube, target: base.Target, *, in_cluster: bool) -> tuple[object, dict[str, str]]:
    auto = transport.Auto(kube, target, forwards=2, in_cluster=in_cluster)
    try:
        chosen = auto.chosen()
        if not isinstance(chosen, portforward.Pool):
            chosen.get("/debug/pprof/heap", io.BytesIO(), timeout=5, max_bytes=1 << 16)
        return chosen, auto.access()
    finally:
        auto.close()


# ---------------------------------------------------------------- where auto starts


def test_in_cluster_means_a_pod_of_the_cluster_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert not podhttp.in_cluster("https://10.96.0.1:443")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert podhttp.in_cluster("https://10.96.0.1:443")
    assert not podhttp.in_cluster("https://api.other-cluster.example:6443")  # a kubeconfig for another cluster
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert podhttp.in_cluster("https://[fd00::1]:443")


def test_auto_from_outside_the_cluster_starts_at_pods_proxy(pod: int, api: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    auto = transport.Auto(_kube(api), _target(pod), forwards=2)
    assert auto.in_cluster is False
    auto.close()
    chosen, access = _choose(_kube(api), _target(pod), in_cluster=False)
    assert isinstance(chosen, podproxy.Proxy) and access == {"http": "proxy"}
    assert _Pod.seen == []  # the pod IP was never asked, though it answers
    proxied = PROXIED.replace(":6060", f":{pod}")
    assert _Api.seen == [proxied, proxied + "heap"]


def test_auto_in_the_cluster_takes_direct_and_keeps_the_probes_connection(pod: int, api: int) -> None:
    auto = transport.Auto(_kube(api), _target(pod), forwards=2, in_cluster=True)
    try:
        chosen = auto.chosen()
        assert isinstance(chosen, podhttp.Direct)
        chosen.get("/debug/pprof/heap", io.BytesIO(), timeout=5, max_bytes=1 << 16)
        assert chosen.connections_opened == 1 and auto.access() == {"http": "direct"}
    finally:
        auto.close()
    assert _Pod.seen == ["/debug/pprof/", "/debug/pprof/heap"] and _Api.seen == []


# ---------------------------------------------------------------- what counts as a pprof server


def test_a_port_that_resets_every_request_is_not_taken_for_direct(resetting: int, api: int) -> None:
    # A bare TCP connect, auto's old probe, says the port is open:
    assert podhttp.reach("127.0.0.1", resetting, 1.0)[0] is podhttp.Reach.OPEN
    chosen, access = _choose(_kube(api), _target(resetting), in_cluster=True)
    assert isinstance(chosen, podproxy.Proxy) and access["http"] == "proxy", access
    assert access["httpFallback"].startswith("direct: cannot reach port"), access
    assert "reset" in access["httpFallback"].lower(), access


@pytest.mark.parametrize(("status", "body", "why"), [
    (404, b"404 page not found\n", "direct: GET /debug/pprof/ answered HTTP 404, not the pprof index"),
    (200, b"<html>welcome to the app</html>", "direct: GET /debug/pprof/ answered HTTP 200 but not with the pprof"),
])
def test_an_answer_that_is_not_the_pprof_index_moves_on(pod: int, api: int, status: int, body: bytes,
                                                         why: str) -> None:
    _Pod.status, _Pod.body = status, body
    chosen, access = _choose(_kube(api), _target(pod), in_cluster=True)
    assert isinstance(chosen, podproxy.Proxy) and access["httpFallback"].startswith(why), access


def test_a_pods_proxy_answer_that_is_not_the_index_falls_through_to_port_forward(api: int) -> None:
    _Api.status, _Api.body = 404, b"404 page not found\n"  # a gateway in front of the API server, say
    chosen, _ = _choose(_kube(api), _target(6060), in_cluster=False)
    assert isinstance(chosen, portforward.Pool)
    auto = transport.Auto(_kube(api), _target(6060), forwards=2, in_cluster=False)
    try:
        with pytest.raises(errors.CollectorError):
            auto.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=10)  # no port-forward on this server
        access = auto.access()
    finally:
        auto.close()
    assert access == {"http": "port-forward",
                      "httpFallback": "proxy: GET /debug/pprof/ answered HTTP 404, not the pprof index"}


# ---------------------------------------------------------------- the operator's pprof check


class _Fails:
    """A transport whose GET fails with ``exc`` (or answers ``status``), as the real ones do."""

    def __init__(self, kind: str, exc: errors.CollectorError | None = None, status: int = 200) -> None:
        self.kind, self.exc, self.status = kind, exc, status

    def get(self, path: str, sink: object, *, timeout: float = 60.0, max_bytes: int = 0,
            sent: Callable[[], None] | None = None) -> HttpResult:
        if self.exc is not None:
            raise self.exc
        return HttpResult(status=self.status)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def access(self) -> dict[str, str]:
        return {"http": self.kind}


def _direct(port: int) -> podhttp.Direct:
    return podhttp.Direct(namespace="prod", pod="api-1", host="127.0.0.1", port=port)


def _direct_error(port: int) -> errors.CollectorError:
    pool = _direct(port)
    try:
        pool.get("/debug/pprof/", io.BytesIO(), timeout=5, max_bytes=10)
    except errors.CollectorError as exc:
        return exc
    finally:
        pool.close()
    raise AssertionError("the GET succeeded")


def _status(code: int, message: str) -> bytes:
    return (b'{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": %d, "message": "%s"}'
            % (code, message.encode()))


PROXY_PATH = "/api/v1/namespaces/prod/pods/api-1:6060/proxy/debug/pprof/"
TARGET = 'port 6060 of pod "api-1" in namespace "prod"'


def _check(http: object) -> errors.TargetError | None:
    try:
        capturing.probe_pprof(http, _target(6060), 5.0)  # type: ignore[arg-type]
    except errors.TargetError as exc:
        return exc
    return None


def test_the_pprof_check_fails_the_pod_on_a_refused_port_through_each_transport() -> None:
    refused = {
        "direct": _direct_error(_closed_port()),
        "proxy": podproxy.proxy_error(PROXY_PATH, 503, _status(
            503, "error trying to reach service: dial tcp 10.1.2.3:6060: connect: connection refused"), TARGET),
        # What port-forward raises when the kubelet's dial inside the pod is refused:
        "port-forward": portforward.Refused(f"nothing listens on {TARGET} (connection refused); set the pprof port"),
    }
    for kind, exc in refused.items():
        failed = _check(_Fails(kind, exc))
        assert failed is not None, kind
        assert str(failed).startswith("spec.parameters.pprofPort: nothing serves /debug/pprof on port 6060 of pod "
                                      f'"api-1" (through {kind}: '), failed
        assert "debugcap.io/pprof-port" in str(failed)


def test_the_pprof_check_fails_the_pod_on_a_404_for_the_index() -> None:
    failed = _check(_Fails("direct", status=404))
    assert failed is not None and "through direct: it answered 404 for /debug/pprof/" in str(failed)
    assert _check(_Fails("direct", status=500)) is None  # a server is there, busy or broken: the collectors say


def test_the_pprof_check_lets_the_capture_go_on_without_proof(resetting: int) -> None:
    inconclusive = {
        "proxy forbidden": podproxy.proxy_error(PROXY_PATH, 403, _status(403, "cannot get pods/proxy"), TARGET),
        "proxy unreachable": podproxy.proxy_error(PROXY_PATH, 503, _status(
            503, "error trying to reach service: dial tcp 10.1.2.3:6060: i/o timeout"), TARGET),
        "direct reset": _direct_error(resetting),
        # What a connect says where a NetworkPolicy drops the operator's packets, or no route leads:
        "direct timeout": _direct(6060)._failed("", TimeoutError("timed out")),
        "direct unreachable": _direct(6060)._failed("", OSError(errno.EHOSTUNREACH, "No route to host")),
        "port-forward forbidden": errors.CollectorError(f"cannot port-forward to {TARGET}: cannot create "
                                                        'pods/portforward "api-1" in namespace "prod": forbidden'),
        "timeout": errors.CollectorError(f"GET /debug/pprof/ from {TARGET} did not finish within 5s"),
    }
    for case, exc in inconclusive.items():
        assert not capturing.pprof_absent(exc), (case, exc)
        assert _check(_Fails(case.split()[0], exc)) is None, case


def test_a_404_through_pods_proxy_is_no_proof() -> None:
    """A gateway in front of the API server (Rancher, an auth proxy) answers 404 for paths it
    does not know: only through direct and port-forward is a 404 the pod's own."""
    assert _check(_Fails("proxy", status=404)) is None
    for kind in ("direct", "port-forward"):
        failed = _check(_Fails(kind, status=404))
        assert failed is not None and f"through {kind}: it answered 404" in str(failed), kind


def test_a_refusal_through_direct_or_pods_proxy_may_be_a_network_policy() -> None:
    refused = {
        "direct": _direct_error(_closed_port()),
        "proxy": podproxy.proxy_error(PROXY_PATH, 503, _status(
            503, "error trying to reach service: dial tcp 10.1.2.3:6060: connect: connection refused"), TARGET),
        "port-forward": portforward.Refused(f"nothing listens on {TARGET} (connection refused); set the pprof port"),
    }
    for kind, exc in refused.items():
        failed = _check(_Fails(kind, exc))
        assert failed is not None, kind  # it still fails the pod: no Go evidence comes through that transport
        policy = "NetworkPolicy" in str(failed)
        assert policy == (kind != "port-forward"), (kind, failed)  # the kubelet's dial in the pod is not filtered
        if policy:
            assert f"cannot be had through {kind}" in str(failed) and "transport: port-forward" in str(failed)


class _Hangs(_Fails):
    """A transport whose GET outlives its timeout (a connection stuck being opened, say)."""

    def __init__(self) -> None:
        super().__init__("proxy")
        self.release = threading.Event()

    def get(self, path: str, sink: object, *, timeout: float = 60.0, max_bytes: int = 0,
            sent: Callable[[], None] | None = None) -> HttpResult:
        self.release.wait()  # until the test ends: only a bound on waiting for it frees the pod
        raise errors.CollectorError("released")


def test_a_pprof_check_that_hangs_does_not_hold_the_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def capture(*_args: object, **_kwargs: object) -> object:  # the capture itself ends at once
        ended = threading.Event()
        ended.set()
        return types.SimpleNamespace(records=(), steps_ended=ended)

    monkeypatch.setattr(capturing.engine, "capture", capture)
    http = _Hangs()
    prepared = capturing.Prepared(target=_target(6060), settings=CaptureSettings(), http=http,  # type: ignore[arg-type]
                                  commands=None)  # type: ignore[arg-type]
    template = templates.ExpandedTemplate(name="t", description="", parameters={},
                                          steps=(templates.Step(collector="expvar", params={}),))
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(capturing.collect_pod(
        None, prepared, CaptureRequest(), template, capture_name="c", work_dir=tmp_path,  # type: ignore[arg-type]
        probe_seconds=0.5, abandoned=threading.Event(), started=datetime.now(UTC))))
    worker.start()
    try:
        # The check never answers: without a bound on waiting for it, the pod would never be given
        # back. (A hang guard, not a speed test: the bound is the check's 0.5 s plus a 5 s margin.)
        worker.join(60)
        assert not worker.is_alive(), "collect_pod waited for a pprof check that never ends"
    finally:
        http.release.set()
        worker.join(10)
    [got] = result
    assert isinstance(got, capturing.Collected), got  # no verdict is no proof: the capture goes on
    got.discard()


# ---------------------------------------------------------------- auto, closed while it chooses


@pytest.fixture
def mute() -> Iterator[tuple[int, threading.Event]]:
    """An API server that takes connections and requests and never answers; the event is set
    once a request came."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    asked, stop = threading.Event(), threading.Event()
    held: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)
            try:
                conn.recv(4096)
            except OSError:
                pass
            asked.set()

    threading.Thread(target=loop, daemon=True).start()
    yield sock.getsockname()[1], asked
    stop.set()
    sock.close()
    for conn in held:
        conn.close()


def test_close_ends_a_choice_under_way_and_the_gets_waiting_for_it(mute: tuple[int, threading.Event]) -> None:
    api, asked = mute
    auto = transport.Auto(_kube(api), _target(6060, ip=""), forwards=2, in_cluster=False, proxy_probe_seconds=20)
    failures: list[str] = []
    ended: list[float] = []

    def get() -> None:
        try:
            auto.get("/debug/pprof/heap", io.BytesIO(), timeout=30, max_bytes=10)
        except errors.CollectorError as exc:
            failures.append(str(exc))
        ended.append(time.monotonic())

    choosing = threading.Thread(target=get)
    choosing.start()
    assert asked.wait(5)  # the pods/proxy probe is waiting for its answer
    waiting = threading.Thread(target=get)
    waiting.start()  # waits for the choice
    began = time.monotonic()
    auto.close()
    choosing.join(10)
    waiting.join(10)
    assert not choosing.is_alive() and not waiting.is_alive()
    assert max(ended) - began < 5.0  # the probe's own timeout is 20 s
    assert len(failures) == 2 and all("closed: capture over" in f for f in failures), failures
