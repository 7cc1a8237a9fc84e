"""Fetching from a hostile pod, through the real direct-HTTP pool and a local server (issue 16).

Cases: a gzip bomb (64 MiB of zeros, 64 KiB on the wire) is stored as it came but partial, the
message naming the limit it was decompressed to (the limit is set small here, so the check never
holds more than that); a body that never ends is cut at the output cap and the connection is
dropped (the server's sends then fail); a server trickling one byte every 0.2 s fails the GET at
its deadline with a message naming it, whatever the number of bytes that came.
"""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from local_http import Server

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base, fetching
from debugcap.collectors.fetching import Body
from debugcap.kube import podhttp

HEAP = "/debug/pprof/heap"
BOMB = gzip.compress(b"\0" * (64 << 20))
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], tuple[podhttp.Direct, Server]]]:
    made: list[tuple[Server, podhttp.Direct]] = []

    def start(answer: Callable[[socket.socket], None]) -> tuple[podhttp.Direct, Server]:
        server = Server(answer)
        pool = podhttp.Direct(namespace="ns", pod="p", host="127.0.0.1", port=server.port)
        made.append((server, pool))
        return pool, server

    yield start
    for server, pool in made:
        pool.close()
        server.sock.close()


def test_a_gzip_bomb_is_stored_but_partial_naming_the_limit(bundle, serve, monkeypatch) -> None:
    monkeypatch.setattr(fetching, "CHECK_MAX_UNCOMPRESSED_BYTES", 1 << 20)
    pool, _ = serve(lambda c: c.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(BOMB) + BOMB))
    result = fetching.fetch(bundle.context(http=pool), "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert result.status is base.Status.PARTIAL
    assert "stored unchecked" in result.message and "more than 1 MiB" in result.message
    assert bundle.files == {layout.PPROF_HEAP: BOMB}


def _flood(conn: socket.socket) -> None:
    conn.sendall(HEAD + b"\r\n")  # no length: the body ends when the connection does
    block = b"x" * (64 << 10)
    while True:
        conn.sendall(block)


def test_a_body_past_the_cap_is_cut_and_the_connection_dropped(bundle, serve) -> None:
    pool, server = serve(_flood)
    ctx = bundle.context(http=pool, output_cap_bytes=100_000)
    result = fetching.fetch(ctx, "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert result.status is base.Status.PARTIAL and "cut at 100000 bytes" in result.message
    assert len(bundle.files[layout.PPROF_HEAP]) == 100_000
    # The connection was closed, not kept reading: the server's sends fail (a wait for an event,
    # not a timing: it is set when the closed socket refuses the next send).
    assert server.dropped.wait(30)


def _trickle(conn: socket.socket) -> None:
    conn.sendall(HEAD + b"\r\n")
    while True:
        conn.sendall(b"\0")
        time.sleep(0.2)


def test_a_trickling_body_fails_at_the_deadline_naming_it(bundle, serve) -> None:
    pool, _ = serve(_trickle)
    ctx = bundle.context(http=pool, http_timeout_seconds=1)
    with pytest.raises(errors.CollectorError, match=r"did not finish within 1s .*bytes of the body came"):
        fetching.fetch(ctx, "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert bundle.files == {}
