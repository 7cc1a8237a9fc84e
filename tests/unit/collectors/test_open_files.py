"""``open-files``: ``ls -l /proc/1/fd``, ``lsof -i`` and ``lsof -p 1``.

Cases: all three outputs are stored under their proc paths; an image without lsof keeps the fd
listing, stays ok and says lsof is missing (and never runs ``lsof -p 1``); ``lsof -i`` exiting 1
with nothing to list is not an error; ``lsof -p 1`` failing makes the result partial.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.open_files import OpenFilesCollector

LS = ["ls", "-l", "/proc/1/fd"]
LSOF_I = ["lsof", "-n", "-P", "-i"]
LSOF_P = ["lsof", "-n", "-P", "-p", "1"]


def test_fd_listing_and_lsof_outputs_are_stored_under_the_proc_paths(bundle, shell, data) -> None:
    shell.answer(LS, "exec/ls-l-proc-1-fd.txt")
    shell.answer(LSOF_I, "exec/lsof-i.txt")
    shell.answer(LSOF_P, "exec/lsof-p1.txt")
    result = OpenFilesCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PROC_FD, layout.PROC_LSOF_I,
                                                               layout.PROC_LSOF_P1))
    assert bundle.files == {layout.PROC_FD: data("exec/ls-l-proc-1-fd.txt"),
                            layout.PROC_LSOF_I: data("exec/lsof-i.txt"),
                            layout.PROC_LSOF_P1: data("exec/lsof-p1.txt")}


def test_without_lsof_the_fd_listing_is_kept_and_the_result_says_why(bundle, shell, data) -> None:
    shell.answer(LS, "exec/ls-l-proc-1-fd.txt")
    shell.answer(LSOF_I, stderr="exec/sh-lsof-not-found.err", exit_code=127)
    result = OpenFilesCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert "lsof is not installed" in result.message
    assert result.files == (layout.PROC_FD,)
    assert bundle.files == {layout.PROC_FD: data("exec/ls-l-proc-1-fd.txt")}
    assert tuple(LSOF_P) not in shell.ran


def test_lsof_i_with_nothing_to_list_is_not_an_error(bundle, shell) -> None:
    shell.answer(LS, "exec/ls-l-proc-1-fd.txt")
    shell.answer(LSOF_I, "", exit_code=1)  # lsof exits 1 when it finds no internet socket
    shell.answer(LSOF_P, "exec/lsof-p1.txt")
    result = OpenFilesCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert bundle.files[layout.PROC_LSOF_I] == b""


def test_failing_lsof_p_makes_the_result_partial(bundle, shell) -> None:
    shell.answer(LS, "exec/ls-l-proc-1-fd.txt")
    shell.answer(LSOF_I, "exec/lsof-i.txt")
    shell.answer(LSOF_P, "", exit_code=1, status_message="command terminated with non-zero exit code")
    result = OpenFilesCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.PARTIAL
    assert "`lsof -n -P -p 1` exited 1" in result.message
