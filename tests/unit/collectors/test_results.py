"""How collector outcomes are folded and classified.

Cases for ``CollectorResult.worst`` (several commands, one collector): all ok is ok; some
kept and some failed/skipped/partial is partial; nothing kept is failed if anything failed,
else skipped; no results is skipped; files are kept in order; one reason shared by several
commands (no shell) is said once.
Cases for ``execution._result`` (one command's outcome): success is ok; a timeout is partial and
says the timeout and where the partial output is; a cut output is partial naming the cap; a
non-zero exit is partial with stderr (or the API's message when stderr is empty); timeout wins
over a non-zero exit. ``execution.run`` without a shell skips without touching the cluster.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from debugcap.collectors import base, execution
from debugcap.kube.exec import ExecResult
from debugcap.kube.shell import Unavailable
from debugcap.settings import CaptureSettings

S = base.Status
R = base.CollectorResult


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([S.OK, S.OK], S.OK),
        ([S.OK, S.FAILED], S.PARTIAL),
        ([S.OK, S.SKIPPED], S.PARTIAL),
        ([S.OK, S.PARTIAL], S.PARTIAL),
        ([S.PARTIAL], S.PARTIAL),
        ([S.FAILED, S.SKIPPED], S.FAILED),
        ([S.FAILED], S.FAILED),
        ([S.SKIPPED, S.SKIPPED], S.SKIPPED),
    ],
    ids=["all-ok", "ok+failed", "ok+skipped", "ok+partial", "partial-alone", "failed+skipped", "failed-alone",
         "all-skipped"],
)
def test_worst_folds_statuses(statuses: list[base.Status], expected: base.Status) -> None:
    assert R.worst([R(s) for s in statuses]).status is expected


def test_worst_of_nothing_is_skipped_with_a_reason() -> None:
    result = R.worst([])
    assert result.status is S.SKIPPED and result.message


def test_worst_keeps_files_in_order_and_joins_distinct_messages() -> None:
    result = R.worst([R(S.OK, "", ("a.txt",)), R(S.PARTIAL, "b timed out", ("b.txt",)), R(S.FAILED, "c failed")])
    assert result.files == ("a.txt", "b.txt")
    assert result.message == "b timed out; c failed"


def test_worst_says_a_shared_reason_once() -> None:
    result = R.worst([R(S.SKIPPED, execution.NO_SHELL)] * 4)
    assert (result.status, result.message) == (S.SKIPPED, execution.NO_SHELL)


class _NoCluster:
    """Stands in for Kube where the code must not reach the cluster."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Must not be called: kube.{name}")


class _Commands:
    """A container with or without a shell, where no command may actually run."""

    def __init__(self, has_shell: bool) -> None:
        self.has_shell = has_shell

    def check(self) -> None:
        if not self.has_shell:
            raise Unavailable("no sh", no_shell=True)

    def run(self, *_a: Any, **_k: Any) -> ExecResult:
        raise AssertionError("Must not run a command")


def _ctx(tmp_path: Path, *, has_shell: bool = True, timeout: float = 2.0) -> base.CollectContext:
    settings = dataclasses.replace(CaptureSettings(), exec_timeout_seconds=timeout, output_cap_bytes=1000)
    return base.CollectContext(
        kube=_NoCluster(),  # type: ignore[arg-type]
        target=base.Target(namespace="ns", pod="p", container="c"),
        settings=settings, params={}, add_file=lambda _p, _s: None, scratch_dir=tmp_path,
        commands=_Commands(has_shell),
    )


def _exec(exit_code: int | None = 0, *, timed_out: bool = False, truncated: bool = False,
          message: str = "") -> ExecResult:
    return ExecResult(command=("df", "-h"), exit_code=exit_code, stdout_bytes=10, stderr_bytes=0,
                      truncated=truncated, timed_out=timed_out, duration_s=0.1, status_message=message)


def test_success_is_ok(tmp_path: Path) -> None:
    result = execution._result(["df", "-h"], _exec(0), b"", "fs/df.txt", _ctx(tmp_path), True)
    assert result == R(S.OK, "", ("fs/df.txt",))


def test_timeout_is_partial_and_keeps_the_output(tmp_path: Path) -> None:
    result = execution._result(["df", "-h"], _exec(None, timed_out=True), b"", "fs/df.txt", _ctx(tmp_path), False)
    assert result.status is S.PARTIAL and result.files == ("fs/df.txt",)
    assert "`df -h` timed out after 2s" in result.message and "fs/df.txt" in result.message


def test_timeout_wins_over_exit_code(tmp_path: Path) -> None:
    result = execution._result(["df"], _exec(1, timed_out=True), b"boom", "fs/df.txt", _ctx(tmp_path), False)
    assert "timed out" in result.message and "boom" not in result.message


def test_cut_output_is_partial_and_names_the_cap(tmp_path: Path) -> None:
    result = execution._result(["cat", "x"], _exec(0, truncated=True), b"", "x.txt", _ctx(tmp_path), True)
    assert result.status is S.PARTIAL and "cut at 1000 bytes" in result.message


def test_nonzero_exit_is_partial_with_stderr(tmp_path: Path) -> None:
    result = execution._result(["lsof"], _exec(1), b"lsof: permission denied\n", "p.txt", _ctx(tmp_path), False)
    assert result.status is S.PARTIAL
    assert result.message == "`lsof` exited 1: lsof: permission denied"


def test_nonzero_exit_without_stderr_uses_the_api_message(tmp_path: Path) -> None:
    res = _exec(2, message="command terminated with non-zero exit code")
    result = execution._result(["ls"], res, b"", "p.txt", _ctx(tmp_path), False)
    assert result.message == "`ls` exited 2: command terminated with non-zero exit code"


def test_no_shell_skips_without_touching_the_cluster(tmp_path: Path) -> None:
    result = execution.run(_ctx(tmp_path, has_shell=False), "proc/ps.txt", [["ps", "aux"], ["ps"]])
    assert result == R(S.SKIPPED, execution.NO_SHELL)


def _files_open_under(directory: Path) -> list[str]:
    """This process's open files that live (or lived, unlinked) in ``directory``."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith(str(directory)):
            found.append(str(target))
    return found


def test_small_evidence_stays_in_memory_and_large_evidence_spills_to_the_scratch_directory(tmp_path: Path) -> None:
    from debugcap.bundle import writer

    kept: dict[str, bytes] = {}
    ctx = dataclasses.replace(_ctx(tmp_path), add_file=lambda p, s: kept.__setitem__(p, s.read_bytes()))
    small, large = b"ps output\n" * 100, b"x" * (writer.SPOOL_MEMORY_BYTES + 1)
    with ctx.scratch() as (fh, buf):
        fh.write(small)
        assert _files_open_under(tmp_path) == []
        ctx.add("proc/ps.txt", buf)
    with ctx.scratch() as (fh, buf):
        fh.write(large)
        assert len(_files_open_under(tmp_path)) == 1
        ctx.add("logs/app.log", buf)
    assert _files_open_under(tmp_path) == []
    assert kept == {"proc/ps.txt": small, "logs/app.log": large}
    assert ctx.added == ["proc/ps.txt", "logs/app.log"]
