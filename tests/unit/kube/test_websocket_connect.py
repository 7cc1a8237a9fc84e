"""Opening an exec or port-forward websocket against an API server that accepts the connection and
never answers: the open gives up after its timeout with an error naming the pod, instead of hanging.

The "API server" is a loopback socket that reads and says nothing: what a wedged API server or a
half-dead load balancer in front of one looks like to the client.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s
from websocket import WebSocketTimeoutException

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube import exec as kexec
from debugcap.kube import portforward, portforward_tunnel
from debugcap.kube.client import Kube


@pytest.fixture
def silent_server() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)  # held open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _kube(host: str) -> Kube:
    conf = k8s.Configuration()
    conf.host = host
    return Kube(configuration=conf)


def _timed_out(exc: BaseException) -> bool:
    """Whether the failure's cause is the connect timeout (not a refusal or a reset): what a
    silent server can only produce if the client gave up waiting, however slow the machine."""
    return isinstance(exc.__cause__, TimeoutError | WebSocketTimeoutException)


# The guard only ends a hang (the bug) as a failure; nothing here measures how fast the machine is.
@pytest.mark.timeout(120)
def test_a_port_forward_to_a_silent_api_server_fails_after_its_connect_timeout(
        silent_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portforward_tunnel, "CONNECT_SECONDS", 0.5)
    with pytest.raises(errors.CollectorError, match='cannot port-forward to port 6060 of pod "api-1"') as caught:
        portforward.get(_kube(silent_server), namespace="shop", pod="api-1", port=6060, path="/debug/pprof/",
                        sink=io.BytesIO())
    assert _timed_out(caught.value) and "no answer from the API server" in str(caught.value)


@pytest.mark.timeout(120)
def test_an_exec_on_a_silent_api_server_fails_after_its_timeout(silent_server: str) -> None:
    with pytest.raises(errors.CollectorError, match='cannot exec \'sh\' in pod "api-1" in namespace "shop"') as caught:
        kexec.Stream(_kube(silent_server), namespace="shop", pod="api-1", container=None, command=["sh"],
                     stdin=True, timeout=0.5)
    assert _timed_out(caught.value) and "no answer from the API server" in str(caught.value)


class _Refused(Exception):
    """What websocket-client raises for a handshake the API server answered with an error."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(f"Handshake status {status_code}")
        self.status_code, self.resp_body = status_code, body


def test_a_refused_exec_handshake_says_which_rights_are_missing() -> None:
    body = json.dumps({"kind": "Status", "code": 403, "reason": "Forbidden", "message": "pods \"api-1\" is "
                       "forbidden: User \"dev\" cannot create resource \"pods/exec\""}).encode()
    exc = kube_errors.from_handshake("/api/v1/namespaces/shop/pods/api-1/exec", "https://k", _Refused(403, body))
    assert isinstance(exc, errors.ForbiddenError)
    assert 'cannot create pods/exec "api-1" in namespace "shop"' in str(exc)
    assert "ask for create rights on pods/exec" in str(exc)


def test_a_handshake_for_a_missing_pod_says_how_to_list_pods() -> None:
    exc = kube_errors.from_handshake("/api/v1/namespaces/shop/pods/gone/portforward", "https://k",
                                     _Refused(404, b'{"message": "pods \\"gone\\" not found"}'))
    assert isinstance(exc, errors.NotFoundError) and "kubectl get pods -n shop" in str(exc)
