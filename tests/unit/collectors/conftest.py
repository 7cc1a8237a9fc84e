"""Stand-ins at debugcap's own seams, answering with output recorded from a real container.

A collector reads the world through three objects of its ``CollectContext``: ``commands`` (a shell
session in the container), ``http`` (the port-forward pool to the pprof port) and ``kube`` (the
API server). The fixtures below replace each with one that answers from ``data/`` (see
``data/README.md`` for how every file was recorded) and remembers what it was asked, and
``bundle`` collects what the collector hands over, by bundle path.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from debugcap import errors
from debugcap.collectors import base
from debugcap.kube.exec import ExecResult
from debugcap.kube.portforward import HttpResult
from debugcap.kube.shell import Unavailable
from debugcap.settings import CaptureSettings

DATA = Path(__file__).parent / "data"
TARGET = base.Target(namespace="prod", pod="api-7d9f8c6b5-x2x4q", container="app", node="worker-1",
                     pprof_port=6060)


def recorded(name: str) -> bytes:
    """A recorded file, e.g. ``exec/busybox-ps.txt``."""
    return (DATA / name).read_bytes()


@dataclass
class Answer:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = 0
    timed_out: bool = False
    status_message: str = ""


class RecordedShell:
    """``base.Commands``: each argv gets the answer recorded for it; any other argv fails the test."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, ...], Answer] = {}
        self.ran: list[tuple[str, ...]] = []
        self.limits: list[tuple[float, int]] = []  # (timeout, max_bytes) of each run
        self.unavailable: Unavailable | None = None

    def answer(self, argv: Sequence[str], stdout: str = "", *, stderr: str = "", exit_code: int | None = 0,
               timed_out: bool = False, status_message: str = "") -> None:
        """``stdout``/``stderr``: names of recorded files under ``data/`` ("" for none)."""
        self.answers[tuple(argv)] = Answer(recorded(stdout) if stdout else b"", recorded(stderr) if stderr else b"",
                                           exit_code, timed_out, status_message)

    def check(self) -> None:
        if self.unavailable is not None:
            raise self.unavailable

    def run(self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float,
            max_bytes: int) -> ExecResult:
        self.check()
        key = tuple(argv)
        self.ran.append(key)
        self.limits.append((timeout, max_bytes))
        if key not in self.answers:
            raise AssertionError(f"unexpected command {argv!r}; recorded: {sorted(self.answers)}")
        a = self.answers[key]
        out = a.stdout[:max_bytes]
        stdout.write(out)
        stderr.write(a.stderr)
        return ExecResult(command=key, exit_code=a.exit_code, stdout_bytes=len(out), stderr_bytes=len(a.stderr),
                          truncated=len(a.stdout) > max_bytes, timed_out=a.timed_out, duration_s=0.01,
                          status_message=a.status_message)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def recorded_response(name: str) -> Response:
    """``go/NAME`` and the headers curl wrote beside it (``go/NAME.headers``, status line first)."""
    status_line, *lines = (DATA / "go" / f"{name}.headers").read_text().splitlines()
    headers = {}
    for line in lines:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return Response(int(status_line.split()[1]), headers, recorded(f"go/{name}"))


class RecordedPprofPort:
    """``base.HttpGets`` (the port-forward pool): each URL path gets the response recorded for it."""

    def __init__(self) -> None:
        self.responses: dict[str, Response | Exception] = {}
        self.later: dict[str, list[Response]] = {}  # answers given before ``responses``, in turn
        self.gets: list[tuple[str, float, int]] = []  # (path, timeout, max_bytes)

    def serve(self, path: str, name: str) -> None:
        self.responses[path] = recorded_response(name)

    def serve_first(self, path: str, *names: str) -> None:
        """Answer ``path`` with these recorded responses, one per GET, before its usual one."""
        self.later[path] = [recorded_response(n) for n in names]

    def fail(self, path: str, exc: Exception) -> None:
        self.responses[path] = exc

    def get(self, path: str, sink: IO[bytes], *, timeout: float, max_bytes: int) -> HttpResult:
        self.gets.append((path, timeout, max_bytes))
        if path not in self.responses and not self.later.get(path):
            raise AssertionError(f"unexpected GET {path}; recorded: {sorted(self.responses)}")
        res = self.later[path].pop(0) if self.later.get(path) else self.responses[path]
        if isinstance(res, Exception):
            raise res
        body = res.body[:max_bytes]
        sink.write(body)
        return HttpResult(status=res.status, headers=dict(res.headers), body_bytes=len(body),
                          truncated=len(res.body) > max_bytes, duration_s=0.01)


class LogResponse:
    """The streamed urllib3 response ``Kube.get`` returns for a log."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.released = False

    def stream(self, amt: int) -> Iterator[bytes]:
        for i in range(0, len(self.body), amt):
            yield self.body[i:i + amt]

    def release_conn(self) -> None:
        self.released = True


@dataclass
class RecordedApiServer:
    """``Kube``'s ``get_json``/``get``: recorded JSON or text per path; an exception stands for an API error."""

    objects: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, tuple[tuple[str, str], ...]]] = field(default_factory=list)
    responses: list[LogResponse] = field(default_factory=list)

    def serve_json(self, path: str, name: str) -> None:
        self.objects[path] = json.loads(recorded(name))

    def serve_text(self, path: str, name: str) -> None:
        self.objects[path] = recorded(name)

    def fail(self, path: str, exc: Exception) -> None:
        self.objects[path] = exc

    def _lookup(self, method: str, path: str, query: Sequence[tuple[str, str]]) -> Any:
        self.calls.append((method, path, tuple(query)))
        if path not in self.objects:
            raise AssertionError(f"unexpected {method} {path}; recorded: {sorted(self.objects)}")
        found = self.objects[path]
        if isinstance(found, Exception):
            raise found
        return found

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any:
        return json.loads(json.dumps(self._lookup("get_json", path, query)))  # a fresh copy, as from the wire

    def get(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any:
        resp = LogResponse(self._lookup("get", path, query))
        self.responses.append(resp)
        return resp


class Bundle:
    """What collectors hand over, by bundle path; and the contexts that hand it here."""

    target = TARGET

    def __init__(self, scratch_dir: Path) -> None:
        self.scratch_dir = scratch_dir
        self.files: dict[str, bytes] = {}

    def _add(self, path: str, scratch: base.Scratch) -> None:
        if path in self.files:  # as the bundle writer does
            raise errors.BundleError(f"bundle already has {path!r}; each collector must write distinct paths")
        self.files[path] = scratch.read_bytes()

    def context(self, *, commands: Any = None, http: Any = None, kube: Any = None, params: dict[str, Any] | None = None,
                target: base.Target = TARGET, shared: Any = None, **settings: Any) -> base.CollectContext:
        extra: dict[str, Any] = {"shared": shared}
        if commands is not None:
            extra["commands"] = commands
        return base.CollectContext(
            kube=kube, target=target, settings=dataclasses.replace(CaptureSettings(), **settings),
            params=params or {}, add_file=self._add, scratch_dir=self.scratch_dir, http=http, **extra,
        )

    def text(self, path: str) -> str:
        return self.files[path].decode()


class FetchClock:
    """The clock of ``fetching`` (busy-profiler retries) and ``go_leak_snapshots`` (the interval
    between snapshots): it moves only when the code sleeps, or a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def fetch_clock(monkeypatch: pytest.MonkeyPatch) -> FetchClock:
    """Every collector test: retries and intervals run on this clock, so nothing waits."""
    from debugcap.collectors import fetching, go_leak_snapshots

    clock = FetchClock()
    for module in (fetching, go_leak_snapshots):
        monkeypatch.setattr(module, "_now", clock.monotonic)
        monkeypatch.setattr(module, "_sleep", clock.sleep)
    return clock


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return Bundle(tmp_path)


@pytest.fixture
def data() -> Callable[[str], bytes]:
    """Reads a recorded file, e.g. ``data("exec/busybox-ps.txt")``."""
    return recorded


@pytest.fixture
def shell() -> RecordedShell:
    return RecordedShell()


@pytest.fixture
def pprof_port() -> RecordedPprofPort:
    return RecordedPprofPort()


@pytest.fixture
def api() -> RecordedApiServer:
    return RecordedApiServer()
