"""``kubectl debugcap create`` refuses bad input before it touches a cluster.

Cases: a target that is not a pod, a target naming no pod, ``-p`` without ``=`` or without a key,
an unknown template, an unknown or out-of-range parameter, and a missing ``--local``. Each exits
with click's usage code 2 and says what to write instead. KUBECONFIG points at a file that does
not exist, so reaching the cluster would show up as a different error (exit 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands import capture as capture_cmd


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, ["create", *args], env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})

    return invoke


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["deployment/api", "--local"], 'only pods can be captured with --local; use pod/NAME'),
        (["pod/", "--local"], "names no pod; use pod/NAME"),
        (["pod/api", "--local", "-p", "cpu_seconds"], 'is not KEY=VALUE (e.g. -p cpu_seconds=10)'),
        (["pod/api", "--local", "-p", "=5"], "is not KEY=VALUE"),
        (["pod/api", "--local", "-t", "debug-ful"], "debug-full"),
        (["pod/api", "--local", "-p", "cpu_secs=5"], "cpu_seconds"),
        (["pod/api", "--local", "-p", "cpu_seconds=0"], "cpu_seconds"),
        (["pod/api", "--local", "-p", "cpu_seconds=ten"], "cpu_seconds"),
        (["pod/api", "--local", "--timeout", "0"], "--timeout"),
    ],
    ids=["not-a-pod", "no-name", "param-without-equals", "param-without-key", "unknown-template",
         "unknown-param", "param-out-of-range", "param-wrong-type", "timeout-below-1"],
)
def test_bad_input_is_a_usage_error_that_says_what_to_do(run, args: list[str], says: str) -> None:  # type: ignore[no-untyped-def]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Traceback" not in result.output


def test_pod_is_the_default_kind_and_its_aliases_are_accepted() -> None:
    assert capture_cmd._parse_target("api-1") == "api-1"
    for kind in ("pod", "pods", "po"):
        assert capture_cmd._parse_target(f"{kind}/api-1") == "api-1"


def test_params_keep_everything_after_the_first_equals() -> None:
    assert capture_cmd._parse_params(("a=1", "b=x=y", "c=")) == {"a": "1", "b": "x=y", "c": ""}


def test_good_input_gets_as_far_as_the_kubeconfig(run) -> None:  # type: ignore[no-untyped-def]
    # Proves the cases above failed on their input, not on the missing cluster.
    result = run("pod/api", "--local", "-t", "disk-usage", "-p", "du_top=5")
    assert result.exit_code == 1
    assert "cannot load Kubernetes credentials" in result.stderr and "missing-kubeconfig" in result.stderr
