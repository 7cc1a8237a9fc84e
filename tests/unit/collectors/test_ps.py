"""``ps``: the container's process list, from the first ``ps`` form the image understands.

Cases: procps ``ps aux`` is stored under proc/ps.txt and nothing else runs; busybox ``ps`` accepts
``aux`` and its own format is kept as is; an image without ``ps`` is a skip naming it once; a
container without a shell is a skip that runs nothing.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base, execution
from debugcap.collectors.ps import PsCollector
from debugcap.kube.shell import Unavailable


def test_ps_aux_output_is_stored_under_the_proc_path(bundle, shell, data) -> None:
    shell.answer(["ps", "aux"], "exec/ps-aux.txt")
    result = PsCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PROC_PS,))
    assert bundle.files == {layout.PROC_PS: data("exec/ps-aux.txt")}
    assert shell.ran == [("ps", "aux")]


def test_busybox_ps_output_is_kept_in_its_own_format(bundle, shell, data) -> None:
    shell.answer(["ps", "aux"], "exec/busybox-ps.txt")
    result = PsCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert bundle.text(layout.PROC_PS).splitlines()[:2] == ["PID   USER     COMMAND",
                                                           data("exec/busybox-ps.txt").decode().splitlines()[1]]


def test_image_without_ps_is_skipped_after_trying_every_form(bundle, shell) -> None:
    for argv in (["ps", "aux"], ["ps", "-ef"], ["ps"]):
        shell.answer(argv, stderr="exec/sh-lsof-not-found.err", exit_code=127)
    result = PsCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.SKIPPED
    assert result.message.startswith("not available in the container: ps")
    assert shell.ran == [("ps", "aux"), ("ps", "-ef"), ("ps",)]
    assert bundle.files == {}


def test_image_without_ps_names_the_missing_tool_once(bundle, shell) -> None:
    for argv in (["ps", "aux"], ["ps", "-ef"], ["ps"]):
        shell.answer(argv, stderr="exec/sh-lsof-not-found.err", exit_code=127)
    result = PsCollector().collect(bundle.context(commands=shell))
    assert result.message == "not available in the container: ps"


def test_container_without_shell_is_skipped_without_running_anything(bundle, shell) -> None:
    shell.unavailable = Unavailable("no sh", no_shell=True)
    result = PsCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.SKIPPED, execution.NO_SHELL)
    assert shell.ran == [] and bundle.files == {}


def test_failed_exec_is_a_failure_that_says_why(bundle, shell) -> None:
    shell.unavailable = Unavailable("pods/exec is forbidden")
    result = PsCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.FAILED
    assert result.message == "cannot run commands in the container: pods/exec is forbidden"
