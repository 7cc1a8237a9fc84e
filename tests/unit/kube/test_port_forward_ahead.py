"""Connections a port-forward pool opens ahead of its first request (``Pool.open``).

The tunnel is replaced by a stand-in that speaks HTTP/1.1 on each connection the way the Go
program on the far side would (or does not answer, or refuses), so what is tested is the pool's
own bookkeeping: which connection a request goes out on, and when a new tunnel is opened.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from debugcap import errors
from debugcap.kube import portforward


class FakeTunnel:
    """``n`` connections; ``behaviour`` of the tunnel opened as number ``index`` (from 0)."""

    opened: list[FakeTunnel] = []
    behaviours: list[str] = []

    def __init__(self, _kube: Any, *, namespace: str, pod: str, port: int, n: int) -> None:
        self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
        self.behaviour = FakeTunnel.behaviours[len(FakeTunnel.opened)]
        self.sent: list[int] = []
        self.connections = [portforward._Connection(self, i) for i in range(n)]  # type: ignore[arg-type]
        FakeTunnel.opened.append(self)
        if self.behaviour == "refuses":  # the kubelet's answer when nothing listens yet
            for conn in self.connections:
                conn.fail("dial tcp 127.0.0.1:6060: connect: connection refused")

    def send(self, channel: int, _data: bytes) -> None:
        self.sent.append(channel // 2)
        if self.behaviour == "answers":
            self.connections[channel // 2].feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        pass


@pytest.fixture
def tunnels(monkeypatch: pytest.MonkeyPatch) -> type[FakeTunnel]:
    FakeTunnel.opened, FakeTunnel.behaviours = [], []
    monkeypatch.setattr(portforward, "_Tunnel", FakeTunnel)
    return FakeTunnel


class Clock:
    """Time that moves only when a test moves it: freshness never depends on the machine's speed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pool(clock: Clock | None = None) -> portforward.Pool:
    return portforward.Pool(None, namespace="shop", pod="api-1", port=6060, size=3,  # type: ignore[arg-type]
                            clock=clock or Clock())


def test_a_request_uses_a_connection_opened_ahead(tunnels: type[FakeTunnel]) -> None:
    tunnels.behaviours = ["answers"]
    pool = _pool()
    pool.open()
    body = io.BytesIO()
    assert pool.get("/debug/pprof/", body, timeout=5).status == 200 and body.getvalue() == b"ok"
    assert pool.tunnels_opened == 1


def test_a_refusal_met_ahead_is_not_the_answer_once_the_program_listens(tunnels: type[FakeTunnel]) -> None:
    tunnels.behaviours = ["refuses", "answers"]
    pool = _pool()
    pool.open()  # the program was still starting
    assert pool.get("/debug/pprof/", io.BytesIO(), timeout=5).status == 200
    # One new tunnel brings all the connections back, not one tunnel per dead connection.
    assert pool.tunnels_opened == 2 and len(tunnels.opened[1].connections) == 3


def test_connections_that_waited_too_long_are_replaced(tunnels: type[FakeTunnel]) -> None:
    tunnels.behaviours = ["silent", "answers"]  # a server that closed them (ReadHeaderTimeout) without a word
    clock = Clock()
    pool = _pool(clock)
    pool.open()
    clock.now += portforward.AHEAD_FRESH_SECONDS
    assert pool.get("/debug/pprof/", io.BytesIO(), timeout=5).status == 200
    assert tunnels.opened[0].sent == [] and pool.tunnels_opened == 2


def test_a_request_that_times_out_on_a_connection_opened_ahead_is_not_sent_again(tunnels: type[FakeTunnel]) -> None:
    tunnels.behaviours = ["silent", "answers"]  # a pod too busy to answer its CPU profile
    pool = _pool()
    pool.open()
    with pytest.raises(errors.CollectorError):
        pool.get("/debug/pprof/profile?seconds=1", io.BytesIO(), timeout=0.3)
    assert tunnels.opened[0].sent == [0] and pool.tunnels_opened == 1


def test_a_closed_port_is_still_reported(tunnels: type[FakeTunnel]) -> None:
    tunnels.behaviours = ["refuses", "refuses"]
    pool = _pool()
    pool.open()
    with pytest.raises(errors.CollectorError, match="connection refused"):
        pool.get("/debug/pprof/", io.BytesIO(), timeout=5)
    assert pool.tunnels_opened == 2


def test_a_stale_connection_another_request_took_meanwhile_is_dropped_too(tunnels: type[FakeTunnel]) -> None:
    tunnels.behaviours = ["silent", "answers"]
    clock = Clock()
    pool = _pool(clock)
    pool.open()
    clock.now += portforward.AHEAD_FRESH_SECONDS
    taken, _ = pool._acquire()  # another request's, between taking a connection and checking it
    assert pool.get("/debug/pprof/", io.BytesIO(), timeout=5).status == 200  # drops the idle ones
    assert pool._usable(taken) is False
    assert tunnels.opened[0].sent == []
