"""A port-forward connection never holds more than it is allowed to (issue 16, hostile pods).

The tunnel is a stand-in whose connection is fed by a thread, as the tunnel's reader feeds it.
Cases:
* a body that never ends is cut at ``max_bytes``; the connection is then dropped (what still
  comes is thrown away) and its tunnel closed once none of its connections is in use; while
  the request reads, the connection never held more than BUFFER_BYTES and one frame;
* bytes nobody asked for (a server sending between requests) past BUFFER_BYTES drop the
  connection, with an error saying why, instead of piling up;
* past BUFFER_BYTES, the feeder waits for the request to read; once the request's deadline has
  passed it drops the connection instead of waiting.
Memory is bounded by construction (the buffer's length is checked after every feed), not measured.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest

from debugcap.kube import portforward, portforward_tunnel

FRAME = 32 << 10
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"  # no length: ends with the connection


class FloodTunnel:
    opened: list[FloodTunnel] = []

    def __init__(self, _kube: Any, *, namespace: str, pod: str, port: int, n: int) -> None:
        self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
        self.connections = [portforward._Connection(self, i) for i in range(n)]  # type: ignore[arg-type]
        self.closed, self.stop = threading.Event(), threading.Event()
        self.fed = self.most_held = 0
        FloodTunnel.opened.append(self)

    def send(self, channel: int, _data: bytes) -> None:
        threading.Thread(target=self._flood, args=(self.connections[channel // 2],), daemon=True).start()

    def _flood(self, conn: portforward._Connection) -> None:
        conn.feed(HEAD)
        while not self.stop.is_set() and not self.closed.is_set():
            conn.feed(b"x" * FRAME)
            self.fed += FRAME
            self.most_held = max(self.most_held, len(conn._buf))

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def tunnels(monkeypatch: pytest.MonkeyPatch):
    FloodTunnel.opened = []
    monkeypatch.setattr(portforward, "_Tunnel", FloodTunnel)
    yield FloodTunnel.opened
    for tunnel in FloodTunnel.opened:
        tunnel.stop.set()


def test_a_flood_is_cut_at_the_cap_then_dropped_and_its_tunnel_closed(tunnels, monkeypatch) -> None:
    monkeypatch.setattr(portforward_tunnel, "BUFFER_BYTES", 256 << 10)
    pool = portforward.Pool(None, namespace="ns", pod="p", port=6060)  # type: ignore[arg-type]
    sink = io.BytesIO()
    result = pool.get("/debug/pprof/heap", sink, timeout=30, max_bytes=1 << 20)
    assert result.truncated and result.body_bytes == len(sink.getvalue()) == 1 << 20
    (tunnel,) = tunnels
    conn = tunnel.connections[0]
    assert conn.dropped and tunnel.closed.is_set()
    assert tunnel.most_held <= (256 << 10) + FRAME
    conn.feed(b"more")  # what still comes is thrown away
    assert len(conn._buf) == 0
    pool.close()


def test_unasked_bytes_past_the_buffer_drop_an_idle_connection(monkeypatch) -> None:
    monkeypatch.setattr(portforward_tunnel, "BUFFER_BYTES", 1024)
    conn = portforward._Connection(FloodTunnel(None, namespace="ns", pod="p", port=1, n=0), 0)  # type: ignore[arg-type]
    for _ in range(10):
        conn.feed(b"y" * 600)
        assert len(conn._buf) <= 1024 + 600
    assert conn.dropped and "more than" in conn.error and conn.ended


def test_a_full_buffer_past_the_requests_deadline_drops_instead_of_waiting(monkeypatch) -> None:
    monkeypatch.setattr(portforward_tunnel, "BUFFER_BYTES", 1024)
    conn = portforward._Connection(FloodTunnel(None, namespace="ns", pod="p", port=1, n=0), 0)  # type: ignore[arg-type]
    conn.deadline = time.monotonic() - 1  # a request is reading, and its time is up
    conn.feed(b"z" * 2048)
    conn.feed(b"z")  # the buffer is full: this one must not wait
    assert conn.dropped and len(conn._buf) == 0
