"""``proc-status``: /proc/1/status and /proc/1/limits of the main process.

Cases: both files are stored verbatim under their proc paths; a limits file that cannot be read
leaves the status and makes the result partial with cat's own error; the commands run with the
capture's exec timeout and output cap.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.proc_status import ProcStatusCollector


def test_status_and_limits_of_pid_1_are_stored_verbatim(bundle, shell, data) -> None:
    shell.answer(["cat", "/proc/1/status"], "exec/proc-1-status.txt")
    shell.answer(["cat", "/proc/1/limits"], "exec/proc-1-limits.txt")
    result = ProcStatusCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PROC_STATUS, layout.PROC_LIMITS))
    assert bundle.files == {layout.PROC_STATUS: data("exec/proc-1-status.txt"),
                            layout.PROC_LIMITS: data("exec/proc-1-limits.txt")}
    assert "VmRSS:" in bundle.text(layout.PROC_STATUS)
    assert "Max open files" in bundle.text(layout.PROC_LIMITS)


def test_unreadable_limits_make_the_result_partial_with_cats_error(bundle, shell, data) -> None:
    shell.answer(["cat", "/proc/1/status"], "exec/proc-1-status.txt")
    shell.answer(["cat", "/proc/1/limits"], stderr="exec/cat-nosuch.err", exit_code=1)
    result = ProcStatusCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.PARTIAL
    assert result.message == "`cat /proc/1/limits` exited 1: " + data("exec/cat-nosuch.err").decode().strip()
    assert bundle.files[layout.PROC_STATUS] == data("exec/proc-1-status.txt")


def test_commands_run_with_the_capture_limits(bundle, shell) -> None:
    shell.answer(["cat", "/proc/1/status"], "exec/proc-1-status.txt")
    shell.answer(["cat", "/proc/1/limits"], "exec/proc-1-limits.txt")
    ProcStatusCollector().collect(bundle.context(commands=shell, exec_timeout_seconds=7, output_cap_bytes=1 << 20))
    assert shell.limits == [(7, 1 << 20), (7, 1 << 20)]


def test_status_cut_at_the_output_cap_is_partial_and_keeps_the_head(bundle, shell, data) -> None:
    shell.answer(["cat", "/proc/1/status"], "exec/proc-1-status.txt")
    shell.answer(["cat", "/proc/1/limits"], "exec/proc-1-limits.txt")
    result = ProcStatusCollector().collect(bundle.context(commands=shell, output_cap_bytes=100))
    assert result.status is base.Status.PARTIAL and "cut at 100 bytes" in result.message
    assert bundle.files[layout.PROC_STATUS] == data("exec/proc-1-status.txt")[:100]
