"""``fd-count``: how many descriptors PID 1 holds, counted in the container's shell.

Cases: the count is stored under proc/fd-count.txt as the shell printed it; it is counted from
/proc/1/fd with ``ls | wc -l`` through ``sh -c``; a command that hangs keeps what it printed and
is partial, naming the timeout.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.fd_count import FdCountCollector

COUNT = ["sh", "-c", "ls /proc/1/fd | wc -l"]


def test_fd_count_is_stored_under_the_proc_path(bundle, shell, data) -> None:
    shell.answer(COUNT, "exec/fd-count.txt")
    result = FdCountCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PROC_FD_COUNT,))
    assert bundle.files == {layout.PROC_FD_COUNT: data("exec/fd-count.txt")}
    assert int(bundle.text(layout.PROC_FD_COUNT)) == len(data("exec/ls-l-proc-1-fd.txt").splitlines()) - 1


def test_count_that_times_out_is_partial_and_names_the_timeout(bundle, shell, data) -> None:
    shell.answer(COUNT, "exec/fd-count.txt", exit_code=None, timed_out=True)
    result = FdCountCollector().collect(bundle.context(commands=shell, exec_timeout_seconds=5))
    assert result.status is base.Status.PARTIAL
    assert "timed out after 5s" in result.message and layout.PROC_FD_COUNT in result.message
    assert bundle.files == {layout.PROC_FD_COUNT: data("exec/fd-count.txt")}
