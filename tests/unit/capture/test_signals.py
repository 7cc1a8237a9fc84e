"""The signals a DebugTrigger reads, from a real goapp process on 127.0.0.1 (pure parsing: test_gostats)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugcap.capture import signals
from debugcap.collectors import base
from debugcap.formats import gostats
from debugcap.kube import podhttp

pytestmark = pytest.mark.slow
GOAPP = Path(__file__).resolve().parents[2] / "fixtures" / "goapp"
LEAKED_PER_SECOND = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def goapp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[base.Target]:
    go = shutil.which("go")
    assert go, "the Go toolchain is required to build the goapp fixture"
    binary = tmp_path_factory.mktemp("goapp") / "goapp"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=GOAPP, env=env, check=True, timeout=300)
    port = _free_port()
    proc = subprocess.Popen([str(binary)], env={**env, "GOAPP_LISTEN": f"127.0.0.1:{port}",
                                                  "GOAPP_LEAK_GOROUTINES": str(LEAKED_PER_SECOND),
                                                  "GOAPP_HEAP_GROWTH_KB": "4096"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while podhttp.reach("127.0.0.1", port, 1.0)[0] is not podhttp.Reach.OPEN:
            assert proc.poll() is None and time.monotonic() < deadline, "goapp did not start listening"
            time.sleep(0.05)
        # Polls until the leak has run for a while (a deadline, not a measured time).
        while _goroutines(port) < 3 * LEAKED_PER_SECOND:
            assert time.monotonic() < deadline, "goapp's leak did not start"
            time.sleep(0.1)
        yield base.Target(namespace="ns", pod="goapp-0", container="app", pprof_port=port, pod_uid="u1",
                          pod_ip="127.0.0.1")
    finally:
        proc.kill()
        proc.wait()


def _goroutines(port: int) -> int:
    sink = io.BytesIO()
    pool = podhttp.Direct(namespace="ns", pod="p", host="127.0.0.1", port=port)
    try:
        pool.get(signals.GOROUTINE_PATH, sink, timeout=10, max_bytes=gostats.GOROUTINE_HEAD_BYTES)
    finally:
        pool.close()
    return gostats.goroutine_total(sink.getvalue()) or 0


def test_goroutines_and_memory_are_read_from_a_real_go_process(goapp: base.Target) -> None:
    # A generous timeout: on a busy machine a GET may wait its turn; the test is about what is read.
    reader = signals.SignalReader(kube=None, transport="direct", timeout=60)  # type: ignore[arg-type]
    try:
        first = reader.read(goapp, memory=True, goroutines=True)
        assert not first.errors
        assert first.goroutines is not None and first.goroutines >= 3 * LEAKED_PER_SECOND
        assert first.memory_source == signals.EXPVAR_PATH
        assert first.memory_bytes is not None and first.memory_bytes > 4 << 20
        # The leak goes on: a later reading on the kept connection sees more goroutines. Not just
        # another count: the server's own goroutines (one per request in flight) come and go.
        deadline = time.monotonic() + 30
        while ((later := reader.read(goapp, memory=False, goroutines=True)).goroutines or 0) <= first.goroutines:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert later.goroutines is not None and later.goroutines > first.goroutines and later.memory_bytes is None
    finally:
        reader.close()


def test_the_heap_texts_memstats_agree_with_expvars(goapp: base.Target) -> None:
    """The fallback for programs without expvar reads the same quantity from heap?debug=1."""
    pool = podhttp.Direct(namespace="ns", pod="p", host="127.0.0.1", port=goapp.pprof_port)
    try:
        vars_body, heap_body = io.BytesIO(), io.BytesIO()
        pool.get(signals.EXPVAR_PATH, vars_body, timeout=10)
        pool.get(signals.HEAP_TEXT_PATH, heap_body, timeout=10)
    finally:
        pool.close()
    from_vars = gostats.held_from_expvar(vars_body.getvalue())
    from_heap = gostats.held_from_heap_text(heap_body.getvalue())
    assert from_vars is not None and from_heap is not None
    # Two readings a moment apart of a heap growing 4 MiB/s: close, not equal.
    assert abs(from_vars - from_heap) < 32 << 20


def test_an_unreachable_pod_is_an_error_in_the_reading_not_an_exception() -> None:
    port = _free_port()  # nothing listens there
    target = base.Target(namespace="ns", pod="gone-0", container="app", pprof_port=port, pod_uid="u2",
                         pod_ip="127.0.0.1")
    reader = signals.SignalReader(kube=None, transport="direct", timeout=2)  # type: ignore[arg-type]
    try:
        got = reader.read(target, memory=True, goroutines=True)
    finally:
        reader.close()
    assert got.goroutines is None and got.memory_bytes is None
    assert len(got.errors) == 2 and "refused" in got.errors[0]
