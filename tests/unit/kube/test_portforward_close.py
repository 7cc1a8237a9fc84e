"""Closing a port-forward tunnel, and a connection given up on (issue 16, hostile pods).

A real :class:`~debugcap.kube.portforward_tunnel.Tunnel` runs its reader over a stand-in websocket:
frames are length-prefixed on a socket pair, so the reader really blocks in a read (holding the
lock that sends take, as websocket-client does mid-frame) and a shutdown really wakes it.
Cases:
* close() returns, and a request blocked reading one of the tunnel's connections fails with the
  reason, while the tunnel's reader is stuck in the middle of a frame (close() waited for the
  lock that reader holds: for FRAME_SECONDS, or for ever);
* a connection given up on that goes on sending (a flood) closes its tunnel after DRAIN_BYTES
  instead of being drained until the capture ends; a request on a sibling fails naming why;
* a connection cut at its cap whose siblings are idle closes its tunnel at once: the idle ones
  were kept, so the tunnel went on draining the flood until the capture ended; the next request
  gets a new tunnel.
No test waits on time: threads are joined with GUARD, which only turns a hang into a failure.
"""

from __future__ import annotations

import collections
import io
import socket
import struct
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from websocket import ABNF, WebSocketConnectionClosedException

from debugcap.kube import portforward, portforward_tunnel

GUARD = 10.0
PORT = struct.pack("<H", 6060)


class FakeWebSocket:
    """Frames as ``<length><channel byte + payload>`` over a socket pair; ``sock`` is the read end."""

    def __init__(self) -> None:
        self.sock: socket.socket | None
        self.sock, self.peer = socket.socketpair()
        self.sent: list[bytes] = []
        self.closes = 0
        self._cut: collections.deque[bool] = collections.deque()  # per frame pushed: is it cut short
        self.mid_frame = threading.Event()  # the reader has the header of a frame cut short

    def settimeout(self, _seconds: float) -> None:
        pass

    def send(self, data: bytes, opcode: int) -> None:
        self.sent.append(data)

    def send_close(self) -> None:
        self.closes += 1

    def _exactly(self, n: int) -> bytes:
        sock, got = self.sock, b""
        while len(got) < n:
            chunk = sock.recv(n - len(got)) if sock is not None else b""
            if not chunk:
                raise WebSocketConnectionClosedException("socket shut down")
            got += chunk
        return got

    def recv_data_frame(self, _control: bool) -> tuple[int, Any]:
        (size,) = struct.unpack("<I", self._exactly(4))
        if self._cut.popleft():  # the reader now waits for the rest, holding the tunnel's lock
            self.mid_frame.set()
        return ABNF.OPCODE_BINARY, SimpleNamespace(data=self._exactly(size))

    def push(self, channel: int, payload: bytes, *, cut: int | None = None) -> None:
        """A frame from the API server; ``cut``: only its first bytes (the rest never comes)."""
        frame = struct.pack("<I", len(payload) + 1) + bytes([channel]) + payload
        self._cut.append(cut is not None)  # before the bytes, which the reader may read at once
        try:
            self.peer.sendall(frame if cut is None else frame[:cut])
        except OSError:  # the tunnel closed the stream: what still comes goes nowhere
            pass

    def shutdown(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.peer.close()


def _tunnel(n: int) -> tuple[portforward_tunnel.Tunnel, FakeWebSocket]:
    ws = FakeWebSocket()
    kube: Any = SimpleNamespace(websocket=lambda _path, _query, timeout: ws)
    tunnel = portforward_tunnel.Tunnel(kube, namespace="ns", pod="p", port=6060, n=n)
    for i in range(n):  # each channel's first frame is the port number
        ws.push(2 * i, PORT)
        ws.push(2 * i + 1, PORT)
    return tunnel, ws


def _reading(conn: portforward_tunnel.Connection) -> tuple[threading.Thread, list[BaseException]]:
    """A request blocked reading ``conn`` (nothing has come for it); what its read raised."""
    raised: list[BaseException] = []

    def read() -> None:
        try:
            conn.readinto(bytearray(10))
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            raised.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, raised


def test_close_wakes_a_blocked_request_while_the_reader_is_stuck_mid_frame() -> None:
    tunnel, ws = _tunnel(1)
    request, raised = _reading(tunnel.connections[0])
    ws.push(0, b"HTTP/1.1 200 OK\r\n", cut=6)  # a frame begun: the reader now waits for its rest
    # Not the lock alone: the reader holds it for the port-number frames too, and a close() that
    # waits for the lock passes when it comes in between them.
    assert ws.mid_frame.wait(GUARD), "the reader never began the frame"
    closing = threading.Thread(target=tunnel.close, daemon=True)
    closing.start()
    closing.join(GUARD)
    assert not closing.is_alive(), "close() waited for the reader's frame"
    request.join(GUARD)
    assert not request.is_alive(), "the request blocked on the tunnel was not woken"
    [exc] = raised
    assert isinstance(exc, ConnectionAbortedError) and "closed: capture over" in str(exc)
    with pytest.raises(ConnectionAbortedError):  # and so does any later read
        tunnel.connections[0].readinto(bytearray(10))


def test_a_connection_given_up_on_that_goes_on_sending_closes_its_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portforward_tunnel, "DRAIN_BYTES", 1000)
    tunnel, ws = _tunnel(2)
    flooded, sibling = tunnel.connections
    request, raised = _reading(sibling)  # a CPU profile on the sibling, say
    flooded.drop()  # its request cut it at its cap
    for _ in range(3):
        ws.push(0, b"x" * 600)
    request.join(GUARD)
    assert not request.is_alive(), "the tunnel went on draining the flood"
    [exc] = raised
    assert isinstance(exc, ConnectionAbortedError) and "went on sending" in str(exc)
    tunnel._reader.join(GUARD)
    assert tunnel.finished and ws.sock is None  # the stream is closed, not read any more
    assert flooded.drained > 1000
    tunnel.close()


def test_a_few_bytes_after_a_cut_pass_without_closing_the_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portforward_tunnel, "DRAIN_BYTES", 1000)
    tunnel, ws = _tunnel(2)
    cut, sibling = tunnel.connections
    cut.drop()
    ws.push(0, b"x" * 600)  # the rest of the body that was cut: less than DRAIN_BYTES
    ws.push(2, b"HTTP/1.1 200 OK\r\n")
    buf = bytearray(100)
    n = sibling.readinto(buf)  # its frame came after the drained one: the reader went on
    assert bytes(buf[:n]) == b"HTTP/1.1 200 OK\r\n" and not tunnel.finished
    tunnel.close()


class FloodTunnel:
    """Floods a connection once it is asked something; notes when it is closed."""

    opened: list[FloodTunnel] = []

    def __init__(self, _kube: Any, *, namespace: str, pod: str, port: int, n: int) -> None:
        self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
        self.connections = [portforward_tunnel.Connection(self, i) for i in range(n)]  # type: ignore[arg-type]
        self.closed, self.stop = threading.Event(), threading.Event()
        FloodTunnel.opened.append(self)

    def send(self, channel: int, _data: bytes) -> None:
        threading.Thread(target=self._flood, args=(self.connections[channel // 2],), daemon=True).start()

    def _flood(self, conn: portforward_tunnel.Connection) -> None:
        conn.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        while not self.stop.is_set() and not self.closed.is_set() and conn.feed(b"x" * 4096):
            pass

    def close(self) -> None:
        self.closed.set()


def test_a_connection_cut_at_its_cap_closes_its_tunnel_although_a_sibling_is_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    FloodTunnel.opened = []
    monkeypatch.setattr(portforward, "_Tunnel", FloodTunnel)
    pool = portforward.Pool(None, namespace="ns", pod="p", port=6060, size=2)  # type: ignore[arg-type]
    try:
        assert pool.get("/debug/pprof/heap", io.BytesIO(), timeout=30, max_bytes=1 << 16).truncated
        [first] = FloodTunnel.opened
        assert first.closed.is_set(), "the flooded tunnel was kept (and drained) for its idle connection"
        assert all(c.dropped for c in first.connections)
        pool.get("/debug/pprof/heap", io.BytesIO(), timeout=30, max_bytes=1 << 16)
        assert len(FloodTunnel.opened) == 2  # the next request did not go to the closed tunnel
    finally:
        pool.close()
        for tunnel in FloodTunnel.opened:
            tunnel.stop.set()
