"""Opening an exec or port-forward websocket against an API server that accepts the connection and
never answers: the open gives up after its timeout with an error naming the pod, instead of hanging.

The "API server" is a loopback socket that reads and says nothing: what a wedged API server or a
half-dead load balancer in front of one looks like to the client.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from debugcap import errors
from debugcap.kube import exec as kexec
from debugcap.kube import portforward
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


def test_a_port_forward_to_a_silent_api_server_fails_after_its_connect_timeout(
        silent_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portforward, "CONNECT_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(errors.CollectorError, match='cannot port-forward to port 6060 of pod "api-1"'):
        portforward.get(_kube(silent_server), namespace="shop", pod="api-1", port=6060, path="/debug/pprof/",
                        sink=io.BytesIO())
    assert time.monotonic() - started < 5


def test_an_exec_on_a_silent_api_server_fails_after_its_timeout(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(errors.CollectorError, match='cannot exec \'sh\' in pod "api-1" in namespace "shop"'):
        kexec.Stream(_kube(silent_server), namespace="shop", pod="api-1", container=None, command=["sh"],
                     stdin=True, timeout=0.5)
    assert time.monotonic() - started < 5
