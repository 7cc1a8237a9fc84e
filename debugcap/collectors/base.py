"""The collector contract: one kind of evidence, collected from one pod.

A collector never chooses bundle paths on its own (they come from
``bundle.layout``) and never writes the bundle: it writes each piece of
evidence to a scratch buffer from ``ctx.scratch()`` and hands it over with
``ctx.add()``; a buffer spills to disk past ``writer.SPOOL_MEMORY_BYTES``, so
evidence of any size streams through and memory stays bounded. One collector
failing is data, not a crash: it returns a ``failed`` result (or raises
``CollectorError``) and the capture goes on.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol, TypeVar

import yaml

from debugcap.bundle import manifest, redact, writer
from debugcap.kube.client import Kube
from debugcap.kube.exec import ExecResult
from debugcap.kube.portforward import HttpResult
from debugcap.kube.shared_reads import SharedReads
from debugcap.kube.shell import Unavailable
from debugcap.settings import CaptureSettings


class Scratch:
    """One piece of evidence on its way into the bundle: written through :attr:`file`, read back
    with :meth:`read_bytes` or :meth:`reader`."""

    def __init__(self, directory: Path) -> None:
        self.file = writer.spool_file(directory)

    def reader(self) -> IO[bytes]:
        """The contents from the start (the same file: nothing is written after this)."""
        self.file.flush()
        self.file.seek(0)
        return self.file

    def read_bytes(self, limit: int = -1) -> bytes:
        return self.reader().read(limit)

    def close(self) -> None:
        self.file.close()

T = TypeVar("T")

# The manifest's statuses are the collectors' statuses: one vocabulary from collector to bundle.
Status = manifest.CollectorStatus


# libyaml's emitter when the wheel has it: the pure-Python one was a tenth of a capture's own CPU.
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def yaml_bytes(doc: Any) -> bytes:
    """Kubernetes objects as evidence: YAML, keys in the API's order."""
    return yaml.dump(doc, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True).encode()


class Kind(enum.StrEnum):
    EXEC = "exec"  # runs commands in the target container
    GO = "go"  # reads the Go runtime's HTTP endpoints (pod IP, pods/proxy or port-forward)
    KUBERNETES = "kubernetes"  # reads the API server only


@dataclass(frozen=True)
class Target:
    """The container a capture reads, resolved once from the live pod."""

    namespace: str
    pod: str
    container: str
    node: str = ""
    image: str = ""
    pprof_port: int = 6060
    restart_count: int = 0
    pod_uid: str = ""
    pod_ip: str = ""  # status.podIP: the direct HTTP transport's address


# C0 controls but tab and newline, DEL and C1 controls (as kubectl_plugin.terminal escapes them).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True)
class CollectorResult:
    status: manifest.CollectorStatus
    message: str = ""
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # The message reaches the manifest, the DebugCapture's status and its Events unredacted by
        # anything else, and may quote a pod's answer ("HTTP 500: ... Authorization: Bearer ...").
        # Escaped too: an escape sequence in it (ESC[2J, OSC 52) would act on the terminal of
        # whoever reads the status with kubectl describe or -o custom-columns. The admin's patterns
        # are the capture's, not known here: debugcap.capture.run applies them to the records.
        object.__setattr__(self, "message", _escape_controls(redact.redact_text(self.message)))

    @classmethod
    def worst(cls, results: list[CollectorResult]) -> CollectorResult:
        """Fold the results of several commands of one collector into one."""
        if not results:
            return cls(Status.SKIPPED, "nothing to collect")
        kept = [r for r in results if r.status in (Status.OK, Status.PARTIAL)]
        bad = [r for r in results if r.status in (Status.FAILED, Status.PARTIAL)]
        if not kept:
            status = Status.FAILED if any(r.status is Status.FAILED for r in results) else Status.SKIPPED
        elif bad or len(kept) < len(results):
            status = Status.PARTIAL
        else:
            status = Status.OK
        # dict.fromkeys: one reason shared by several commands (no shell) is said once.
        message = "; ".join(dict.fromkeys(r.message for r in results if r.message))
        files = tuple(f for r in results for f in r.files)
        return cls(status, message, files)


class Commands(Protocol):
    """Runs commands in the target container (``debugcap.kube.shell.Pool`` in a capture)."""

    def check(self) -> None:
        """Raise ``Unavailable`` when no command can run in the container."""

    def run(self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float,
            max_bytes: int) -> ExecResult:
        """Run one command; contract of ``debugcap.kube.exec.run``."""


class _NoCommands:
    def check(self) -> None:
        raise Unavailable("this capture runs no commands in the container")

    def run(self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float,
            max_bytes: int) -> ExecResult:
        self.check()
        raise AssertionError("unreachable")


class HttpGets(Protocol):
    """GETs from the pod's pprof port (a transport of ``debugcap.capture.transport.http_pool`` in a
    capture: direct, pods/proxy or port-forward)."""

    def get(self, path: str, sink: IO[bytes], *, timeout: float, max_bytes: int) -> HttpResult:
        """One GET; contract of ``debugcap.kube.portforward.Pool.get``."""


@dataclass
class CollectContext:
    """What a collector may use; built by the capture engine for each run."""

    kube: Kube
    target: Target
    settings: CaptureSettings
    params: Mapping[str, Any]
    add_file: Callable[[str, Scratch], None]
    scratch_dir: Path
    # Used only by exec collectors, so Kubernetes and Go collectors never wait for an exec.
    commands: Commands = field(default_factory=_NoCommands)
    http: HttpGets | None = None  # the capture's transport to target.pprof_port
    added: list[str] = field(default_factory=list)
    # What the target revealed about itself (Go version, GODEBUG, GOMAXPROCS, GOMEMLIMIT): shared by
    # the collectors of one capture, written to the manifest's ``runtime``. Use :meth:`note`.
    facts: dict[str, str] = field(default_factory=dict)
    # The reads a sweep's pods share (a namespace's Events, a node, the pods it listed); None for a
    # capture of one pod, whose Kubernetes collectors read just what concerns it.
    shared: SharedReads | None = None

    @contextmanager
    def scratch(self) -> Iterator[tuple[IO[bytes], Scratch]]:
        """A buffer for evidence on its way into the bundle (its file, and itself); gone afterwards."""
        buf = Scratch(self.scratch_dir)
        try:
            yield buf.file, buf
        finally:
            buf.close()

    def add(self, bundle_path: str, scratch: Scratch) -> None:
        self.add_file(bundle_path, scratch)
        self.added.append(bundle_path)

    def add_bytes(self, bundle_path: str, data: bytes) -> None:
        with self.scratch() as (fh, buf):
            fh.write(data)
            self.add(bundle_path, buf)

    def read_shared(self, key: Hashable, read: Callable[[], T], *, alone: Callable[[], T] | None = None) -> T:
        """What another pod of the sweep read under ``key`` at most ``shared.max_age`` ago, or
        ``read()``; ``alone()`` is this pod's own narrower read, for a capture of one pod and when
        the shared read fails (:mod:`debugcap.kube.shared_reads`)."""
        if self.shared is None:
            return (alone or read)()
        return self.shared.get(key, read, alone=alone)

    def note(self, key: str, value: str) -> None:
        """Record a fact about the target for the manifest's ``runtime`` (the first value wins: the
        endpoints that reveal one agree)."""
        if value:
            self.facts.setdefault(key, value)

    def param(self, name: str, default: Any) -> Any:
        value = self.params.get(name)
        return default if value is None else value


class Collector(abc.ABC):
    """One kind of evidence. Subclasses set ``name``, ``kind``, ``description`` and ``collect``."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    description: ClassVar[str]
    # Collectors that must cover the same moment (CPU profile, trace, goroutine dump) run together.
    windowed: ClassVar[bool] = False
    # A snapshot of memory or goroutines that a running trace or CPU profile would pollute with
    # the profiler's own buffers and goroutines: taken before the window opens (capture/window.py).
    before_window: ClassVar[bool] = False

    @abc.abstractmethod
    def collect(self, ctx: CollectContext) -> CollectorResult:
        """Collect, add files through ``ctx``, return what happened."""

    @classmethod
    def expected_seconds(cls, params: Mapping[str, Any]) -> float:
        """How long a step with ``params`` is meant to take: its ``seconds`` (a CPU profile, a
        trace), 0 for an instant one. The automatic capture deadline is built on it."""
        try:
            return float(params.get("seconds") or 0)
        except (TypeError, ValueError):
            return 0.0
