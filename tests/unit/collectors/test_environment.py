"""``environment``: PID 1's environment from /proc/1/environ, one variable a line.

Cases: the NUL-separated environ is read through ``tr`` in the shell and stored under
env/environment.txt as printed (masking is the bundle writer's job, not the collector's);
an image without ``tr`` falls back to ``env``.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.environment import EnvironmentCollector

TR = ["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"]


def test_pid_1_environment_is_stored_one_variable_a_line(bundle, shell, data) -> None:
    shell.answer(TR, "exec/proc-1-environ.txt")
    result = EnvironmentCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.ENV_ENVIRONMENT,))
    assert bundle.files == {layout.ENV_ENVIRONMENT: data("exec/proc-1-environ.txt")}
    assert "GOMAXPROCS=2" in bundle.text(layout.ENV_ENVIRONMENT).splitlines()
    assert shell.ran == [tuple(TR)]


def test_image_without_tr_falls_back_to_env(bundle, shell, data) -> None:
    shell.answer(TR, stderr="exec/sh-lsof-not-found.err", exit_code=127)
    shell.answer(["env"], "exec/proc-1-environ.txt")
    result = EnvironmentCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert shell.ran == [tuple(TR), ("env",)]
    assert bundle.files == {layout.ENV_ENVIRONMENT: data("exec/proc-1-environ.txt")}


def test_from_a_debug_container_env_is_never_the_fallback(bundle, shell) -> None:
    # `env` there prints the debug container's environment, not the target's: better nothing.
    shell.via = "ephemeral"
    shell.answer(TR, stderr="exec/sh-lsof-not-found.err", exit_code=127)
    shell.answer(["env"], "exec/proc-1-environ.txt")
    result = EnvironmentCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.SKIPPED
    assert ("env",) not in shell.ran and layout.ENV_ENVIRONMENT not in bundle.files


def test_godebug_of_the_process_is_noted_for_the_manifest(bundle, shell) -> None:
    import dataclasses

    shell.answer(TR, "exec/proc-1-environ.txt")
    environ = b"PATH=/bin\nGODEBUG=http2client=0,madvdontneed=1\nGOMAXPROCS=2\n"  # as tr prints it
    shell.answers[tuple(TR)] = dataclasses.replace(shell.answers[tuple(TR)], stdout=environ)
    ctx = bundle.context(commands=shell)
    EnvironmentCollector().collect(ctx)
    assert ctx.facts == {"GODEBUG": "http2client=0,madvdontneed=1"}


def test_a_process_without_godebug_notes_nothing(bundle, shell) -> None:
    shell.answer(TR, "exec/proc-1-environ.txt")
    ctx = bundle.context(commands=shell)
    EnvironmentCollector().collect(ctx)
    assert "GODEBUG" not in ctx.facts
