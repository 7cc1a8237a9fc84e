"""A port-forward GET ends within its timeout, however the answer trickles in.

The tunnel is replaced by a stand-in whose connection is fed by a thread the way the tunnel's
reader feeds it from the kubelet's frames; what is tested is ``portforward._request`` and
``_Connection``'s reads.

Cases:
* a body dripping a byte at a time ends at the timeout, with the bytes that came in the sink
  (each read used to get the whole timeout, and a read waited for 256 KiB or the end);
* headers dripping a byte at a time end at the timeout too;
* a body that stops ends at the timeout;
* a prompt answer still streams whole, chunked ones too, and the connection is kept.

No wall clock is read: a GET that ended at its timeout is one that failed before the drip had
sent its whole answer (``FakeTunnel.dripped``), with part of the body in the sink.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator

import pytest

from debugcap import errors
from debugcap.kube import portforward

Answer = Callable[["FakeTunnel", portforward._Connection], None]


class FakeTunnel:
    """One connection; each request sent on it is answered by ``answer``, in a thread of its own."""

    target = 'port 6060 of pod "api-1" in namespace "prod"'

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.dripped = 0  # bytes fed so far
        self.conn = portforward._Connection(self, 0)  # type: ignore[arg-type]

    def send(self, _channel: int, data: bytes) -> None:
        self.requests.append(data)
        threading.Thread(target=self.answer, args=(self, self.conn), daemon=True).start()

    def drip(self, data: bytes, every: float) -> None:
        for i in range(len(data)):
            if self.stop.wait(every):
                return
            self.conn.feed(data[i:i + 1])
            self.dripped += 1


@pytest.fixture
def tunnels() -> Iterator[list[FakeTunnel]]:
    made: list[FakeTunnel] = []
    yield made
    for tunnel in made:
        tunnel.stop.set()


def _tunnel(tunnels: list[FakeTunnel], answer: Answer) -> FakeTunnel:
    tunnel = FakeTunnel(answer)
    tunnels.append(tunnel)
    return tunnel


def test_a_dripping_body_ends_at_the_timeout_with_what_came(tunnels: list[FakeTunnel]) -> None:
    def answer(tunnel: FakeTunnel, conn: portforward._Connection) -> None:
        conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
        tunnel.drip(b"x" * 20, 0.3)  # 6 s in all: no single read ever waits a whole second

    tunnel, sink = _tunnel(tunnels, answer), io.BytesIO()
    with pytest.raises(errors.CollectorError, match=r"did not finish within 1s \(\d+ bytes of the body came\)"):
        portforward._request(tunnel.conn, "/debug/pprof/heap", sink, 1.0, 1 << 20, False)
    # Ended before the body had all come (it takes 6 s), with what had: streamed, not held back.
    assert 1 <= len(sink.getvalue()) < 20


def test_dripping_headers_end_at_the_timeout(tunnels: list[FakeTunnel]) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"  # 66 bytes
    tunnel = _tunnel(tunnels, lambda t, _conn: t.drip(head, 0.1))  # 6.6 s in all
    with pytest.raises(errors.CollectorError, match="did not finish within 1s"):
        portforward._request(tunnel.conn, "/debug/pprof/", io.BytesIO(), 1.0, 1 << 20, False)
    assert tunnel.dripped < len(head)  # it gave up while the headers were still coming


def test_a_body_that_stops_ends_at_the_timeout(tunnels: list[FakeTunnel]) -> None:
    def answer(_tunnel: FakeTunnel, conn: portforward._Connection) -> None:
        conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")

    tunnel, sink = _tunnel(tunnels, answer), io.BytesIO()
    # The rest never comes: without the deadline the GET would wait forever (the test would hang).
    with pytest.raises(errors.CollectorError, match=r"did not finish within 1s \(3 bytes of the body came\)"):
        portforward._request(tunnel.conn, "/debug/pprof/heap", sink, 1.0, 1 << 20, False)
    assert sink.getvalue() == b"abc"


def test_prompt_answers_stream_whole_and_keep_the_connection(tunnels: list[FakeTunnel]) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + b"y" * 300_000

    def answer(tunnel: FakeTunnel, conn: portforward._Connection) -> None:
        conn.feed(chunked if b"chunked" in tunnel.requests[-1] else big)

    tunnel = _tunnel(tunnels, answer)
    first, second = io.BytesIO(), io.BytesIO()
    res, keep = portforward._request(tunnel.conn, "/big", first, 5.0, 1 << 20, False)
    assert (res.status, res.body_bytes, keep) == (200, 300_000, True)
    res, keep = portforward._request(tunnel.conn, "/chunked", second, 5.0, 1 << 20, True)
    assert (res.status, keep) == (200, True)
    assert (first.getvalue(), second.getvalue()) == (b"y" * 300_000, b"hello world")
