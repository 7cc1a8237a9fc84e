"""``command``: an admin's command from a template, its output in custom/<name>.txt.

Cases: the argv runs as given and its output lands under custom/<name>.txt; a missing name, a
name that is not kebab-case, and an argv that is not a non-empty list of strings are config
errors that run nothing; a command the image lacks is a skip naming it.
"""

from __future__ import annotations

import pytest

from debugcap import errors
from debugcap.collectors import base
from debugcap.collectors.command import CommandCollector


def test_command_output_is_stored_under_its_custom_name(bundle, shell, data) -> None:
    shell.answer(["cat", "/proc/loadavg"], "exec/proc-loadavg.txt")
    ctx = bundle.context(commands=shell, params={"name": "load-average", "argv": ["cat", "/proc/loadavg"]})
    result = CommandCollector().collect(ctx)
    assert result == base.CollectorResult(base.Status.OK, "", ("custom/load-average.txt",))
    assert bundle.files == {"custom/load-average.txt": data("exec/proc-loadavg.txt")}
    assert shell.ran == [("cat", "/proc/loadavg")]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"argv": ["cat", "/proc/loadavg"]}, "needs params.name"),
        ({"name": "Load_Average", "argv": ["cat", "/proc/loadavg"]}, "kebab-case"),
        ({"name": "load"}, "needs params.argv"),
        ({"name": "load", "argv": "cat /proc/loadavg"}, "needs params.argv"),
        ({"name": "load", "argv": []}, "needs params.argv"),
        ({"name": "load", "argv": ["cat", ""]}, "needs params.argv"),
    ],
    ids=["no-name", "name-not-kebab", "no-argv", "argv-string", "argv-empty", "argv-empty-word"],
)
def test_bad_step_is_a_config_error_that_runs_nothing(bundle, shell, params, says) -> None:
    with pytest.raises(errors.ConfigError, match=says):
        CommandCollector().collect(bundle.context(commands=shell, params=params))
    assert shell.ran == [] and bundle.files == {}


def test_command_the_image_lacks_is_skipped(bundle, shell) -> None:
    shell.answer(["lsof", "-n", "-P", "-i"], stderr="exec/sh-lsof-not-found.err", exit_code=127)
    ctx = bundle.context(commands=shell, params={"name": "connections", "argv": ["lsof", "-n", "-P", "-i"]})
    result = CommandCollector().collect(ctx)
    assert result == base.CollectorResult(base.Status.SKIPPED, "not available in the container: lsof")
    assert bundle.files == {}
