"""A tunnel given up on gets no new request, even through a sibling that was in use (issue 16).

A connection cut at its cap takes its tunnel out of use. A sibling busy at that moment (a CPU
profile) used to come back as a kept-alive idle connection when its request ended, so the next
request went to the tunnel meant to close, which then lived on (draining the flood) until the
capture ended. Now the sibling is not kept and the tunnel closes when its request ends.
No test waits on time: threads are joined with GUARD, which only turns a hang into a failure.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest

from debugcap.kube import portforward, portforward_tunnel

GUARD = 10.0
CAP = 1 << 10


class ScriptedTunnel:
    """Answers at once, except a CPU profile, which the test answers; notes when it is closed."""

    opened: list[ScriptedTunnel] = []

    def __init__(self, _kube: Any, *, namespace: str, pod: str, port: int, n: int) -> None:
        self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
        self.connections = [portforward_tunnel.Connection(self, i) for i in range(n)]  # type: ignore[arg-type]
        self.closed = threading.Event()
        self.asked: list[tuple[int, str]] = []  # (connection index, path)
        ScriptedTunnel.opened.append(self)

    def send(self, channel: int, data: bytes) -> None:
        path = data.split(b" ")[1].decode()
        conn = self.connections[channel // 2]
        self.asked.append((conn.index, path))
        if path == "/debug/pprof/heap":  # more than the cap: the request gives up on it
            conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * CAP) + b"x" * (4 * CAP))
        elif path != "/debug/pprof/profile":
            conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.closed.set()


def test_a_sibling_in_use_when_its_tunnel_is_given_up_on_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    ScriptedTunnel.opened = []
    monkeypatch.setattr(portforward, "_Tunnel", ScriptedTunnel)
    pool = portforward.Pool(None, namespace="ns", pod="p", port=6060, size=2)  # type: ignore[arg-type]
    profile_sent, results = threading.Event(), []

    def profile() -> None:
        results.append(pool.get("/debug/pprof/profile", io.BytesIO(), timeout=30, sent=profile_sent.set))

    profiling = threading.Thread(target=profile, daemon=True)
    try:
        profiling.start()
        assert profile_sent.wait(GUARD), "the CPU profile was never asked"
        [first] = ScriptedTunnel.opened
        assert pool.get("/debug/pprof/heap", io.BytesIO(), timeout=30, max_bytes=CAP).truncated
        assert not first.closed.is_set()  # the CPU profile still runs on it
        [(busy, _), (cut, _)] = first.asked
        first.connections[busy].feed(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nprofile")
        profiling.join(GUARD)
        assert not profiling.is_alive() and results[0].body_bytes == 7
        assert first.closed.is_set(), "the tunnel given up on was kept for the sibling that was in use"
        assert all(c.dropped for c in first.connections)
        pool.get("/debug/pprof/goroutine", io.BytesIO(), timeout=30)
        assert len(ScriptedTunnel.opened) == 2, "the next request went to the tunnel given up on"
        assert [p for _, p in first.asked] == ["/debug/pprof/profile", "/debug/pprof/heap"]
    finally:
        pool.close()
