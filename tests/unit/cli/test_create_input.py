"""``kubectl debugcap create --local`` refuses bad input before it touches a cluster.

Cases: a target that is not a pod, a target naming no pod, ``-p`` without ``=`` or without a key,
an unknown template, an unknown or out-of-range parameter, a ``--timeout`` below 1. Each exits
with click's usage code 2 and says what to write instead. KUBECONFIG points at a file that does
not exist, so reaching the cluster would show up as a different error (exit 1).
(Moved here from ``tests/unit/collectors/test_cli_input.py`` with the command modules.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands import captures


def create(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["create", *args], env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["deployment/api", "--local"], "only pods can be captured with --local; use pod/NAME"),
        (["pod/", "--local"], "names no pod; use pod/NAME"),
        (["pod/api", "--local", "-p", "cpu_seconds"], "is not KEY=VALUE (e.g. -p cpu_seconds=10)"),
        (["pod/api", "--local", "-p", "=5"], "is not KEY=VALUE"),
        (["pod/api", "--local", "-t", "debug-ful"], "debug-full"),
        (["pod/api", "--local", "-p", "cpu_secs=5"], "cpu_seconds"),
        (["pod/api", "--local", "-p", "cpu_seconds=0"], "cpu_seconds"),
        (["pod/api", "--local", "-p", "cpu_seconds=ten"], "cpu_seconds"),
        (["pod/api", "--local", "--timeout", "0"], "--timeout"),
        (["--local"], "--local captures one pod: give pod/NAME"),
    ],
    ids=["not-a-pod", "no-name", "param-without-equals", "param-without-key", "unknown-template",
         "unknown-param", "param-out-of-range", "param-wrong-type", "timeout-below-1", "no-target"],
)
def test_bad_input_is_a_usage_error_that_says_what_to_do(tmp_path: Path, args: list[str], says: str) -> None:
    result = create(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Traceback" not in result.output


def test_pod_is_the_default_kind_and_its_aliases_are_accepted() -> None:
    assert captures.local_pod("api-1") == "api-1"
    for kind in ("pod", "pods", "po"):
        assert captures.local_pod(f"{kind}/api-1") == "api-1"


def test_params_keep_everything_after_the_first_equals() -> None:
    assert captures.parse_params(("a=1", "b=x=y", "c=")) == {"a": "1", "b": "x=y", "c": ""}


def test_good_input_gets_as_far_as_the_kubeconfig(tmp_path: Path) -> None:
    # Proves the cases above failed on their input, not on the missing cluster.
    result = create(tmp_path, "pod/api", "--local", "-t", "disk-usage", "-p", "du_top=5")
    assert result.exit_code == 1
    assert "cannot load Kubernetes credentials" in result.stderr and "missing-kubeconfig" in result.stderr
