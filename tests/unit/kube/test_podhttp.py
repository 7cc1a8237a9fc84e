"""The kept-alive HTTP pool of the direct and pods/proxy transports, against raw local sockets.

Cases:
* a GET whose connection was taken before close() fails "capture over" and never reconnects
  (http.client's auto_open would silently open a new connection);
* a request's timeout bounds the whole GET: a body dripping a byte at a time, headers dripping
  a byte at a time, a body that stops; each recv no longer restarts the clock. Bytes that came
  before the deadline are in the sink. The pods/proxy transport shares the pool: the same
  bound holds through it;
* the request keeps working when the server answers at once (the deadline does not break
  kept-alive reuse, chunked bodies, or a body read to its end).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client as k8s

from debugcap import errors
from debugcap.kube import podhttp, podproxy
from debugcap.kube.client import Kube

Serve = Callable[[socket.socket], None]


class RawServer:
    """A TCP server on 127.0.0.1 that hands each connection to ``serve`` in a thread of its own."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.peers: list[tuple[str, int]] = []  # the address of each connection accepted, in order
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.serve(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(4096)
        if not got:
            return data
        data += got
    return data


def drip(conn: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    for i in range(len(data)):
        if stop.wait(every):
            return
        conn.sendall(data[i:i + 1])


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``condition`` came true within ``seconds`` (a generous bound: it is asked every 10 ms)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    yield made
    for srv in made:
        srv.close()


def start(servers: list[RawServer], serve: Serve) -> RawServer:
    srv = RawServer(serve)
    servers.append(srv)
    return srv


def ok(body: bytes = b"hello") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def direct(port: int) -> podhttp.Direct:
    return podhttp.Direct(namespace="prod", pod="api-1", host="127.0.0.1", port=port)


# ---------------------------------------------------------------- close() against a GET under way


def test_a_get_on_a_connection_taken_before_close_fails_and_does_not_reconnect(servers: list[RawServer]) -> None:
    def serve(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(ok())

    srv = start(servers, serve)
    pool = direct(srv.port)
    conn, reused = pool._acquire(time.monotonic() + 5)  # the GET has its connection...
    assert not reused and srv.accepted <= 1
    pool.close()  # ...when the capture ends
    with pytest.raises(errors.CollectorError, match="closed: capture over"):
        pool._request(conn, "/debug/pprof/heap", io.BytesIO(), time.monotonic() + 5, 5, 1 << 20, False, None)
    pool._release(conn, False)  # as get() does: the thread using a connection closes it
    # Connections are accepted in the order they were made: once one made now has been accepted,
    # any the GET made before it has been too.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as marker:
        assert wait_for(lambda: marker.getsockname() in srv.peers)
    assert len(srv.peers) == 2, "the GET opened a new connection after close()"
    with pytest.raises(errors.CollectorError, match="closed: capture over"):
        pool.get("/", io.BytesIO(), timeout=5, max_bytes=10)


def test_connections_never_reopen_by_themselves(servers: list[RawServer]) -> None:
    srv = start(servers, lambda conn: conn.sendall(ok()) if read_request(conn) else None)
    pool = direct(srv.port)
    try:
        assert pool.get("/", io.BytesIO(), timeout=5, max_bytes=100).status == 200
        conn, _ = pool._acquire(time.monotonic() + 5)
        assert conn.auto_open == 0
        pool._release(conn, False)
    finally:
        pool.close()


# ---------------------------------------------------------------- the deadline


def test_a_dripping_body_ends_at_the_timeout_with_what_came(servers: list[RawServer]) -> None:
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        drip(conn, b"x" * 40, 0.1, stop)  # 4 s in all, a byte every 0.1 s: no recv ever times out

    srv = start(servers, serve)
    pool, sink = direct(srv.port), io.BytesIO()
    try:
        # Without the deadline the 40 bytes would all come (after 4 s) and the GET succeed.
        with pytest.raises(errors.CollectorError, match=r"did not finish within 1s \(\d+ bytes of the body came\)"):
            pool.get("/debug/pprof/heap", sink, timeout=1, max_bytes=1 << 20)
    finally:
        stop.set()
        pool.close()
    assert 3 <= len(sink.getvalue()) < 40  # streamed as it came, not held back for a full buffer


def test_dripping_headers_end_at_the_timeout(servers: list[RawServer]) -> None:
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        drip(conn, ok(), 0.1, stop)

    srv = start(servers, serve)
    pool = direct(srv.port)
    try:
        # Without the deadline the headers would all come, a byte every 0.1 s, and the GET succeed.
        with pytest.raises(errors.CollectorError, match="did not finish within 1s"):
            pool.get("/debug/pprof/", io.BytesIO(), timeout=1, max_bytes=1 << 20)
    finally:
        stop.set()
        pool.close()


def test_a_body_that_stops_ends_at_the_timeout(servers: list[RawServer]) -> None:
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        stop.wait(10)

    srv = start(servers, serve)
    pool, sink = direct(srv.port), io.BytesIO()
    try:
        # Without the deadline the GET would wait for the server's 10 s and end in a different error.
        with pytest.raises(errors.CollectorError, match="did not finish within 1s"):
            pool.get("/debug/pprof/heap", sink, timeout=1, max_bytes=1 << 20)
    finally:
        stop.set()
        pool.close()
    assert sink.getvalue() == b"abc"


def test_the_pods_proxy_transport_has_the_same_deadline(servers: list[RawServer]) -> None:
    stop = threading.Event()
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        drip(conn, b"x" * 40, 0.1, stop)

    srv = start(servers, serve)
    kube = Kube(configuration=k8s.Configuration(host=f"http://127.0.0.1:{srv.port}"))
    proxy = podproxy.Proxy(kube, namespace="prod", pod="api-1", port=6060)
    try:
        # Without the deadline the 40 bytes would all come (after 4 s) and the GET succeed.
        with pytest.raises(errors.CollectorError, match="did not finish within 1s"):
            proxy.get("/debug/pprof/heap", io.BytesIO(), timeout=1, max_bytes=1 << 20)
    finally:
        stop.set()
        proxy.close()
    assert seen[0].startswith(b"GET /api/v1/namespaces/prod/pods/api-1:6060/proxy/debug/pprof/heap HTTP/1.1")


def test_prompt_answers_still_stream_whole_and_reuse_the_connection(servers: list[RawServer]) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

    def serve(conn: socket.socket) -> None:
        while request := read_request(conn):
            conn.sendall(chunked if b"chunked" in request else ok(b"y" * 300_000))

    srv = start(servers, serve)
    pool = direct(srv.port)
    try:
        big, small = io.BytesIO(), io.BytesIO()
        assert pool.get("/big", big, timeout=5, max_bytes=1 << 20).body_bytes == 300_000
        assert pool.get("/chunked", small, timeout=5, max_bytes=1 << 20).status == 200
        assert (big.getvalue(), small.getvalue()) == (b"y" * 300_000, b"hello world")
        assert pool.connections_opened == 1
    finally:
        pool.close()

