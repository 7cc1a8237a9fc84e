"""What holds for every command: `-o` is the output format, errors become one line on stderr in one
place, and `--help` loads no cluster client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from debugcap import errors
from debugcap.kubectl_plugin.cli import COMMANDS, all_commands, cli

from .fakes import FakeKube, raising, use

FORMATS = {"table", "wide", "name", "json", "yaml"}


def test_o_is_the_output_format_in_every_command() -> None:
    seen = []
    for name, command in all_commands().items():
        for param in command.params:
            if "-o" in param.opts or "--output" in param.opts:
                assert param.opts == ["-o", "--output"], name
                assert isinstance(param.type, click.Choice), f"{name} -o takes {param.type}"
                assert set(param.type.choices) <= FORMATS, f"{name} -o {param.type.choices}"
                seen.append(name)
    assert {"create", "get", "templates"} <= set(seen)


def test_templates_prints_names_json_and_yaml() -> None:
    names = CliRunner().invoke(cli, ["templates", "-o", "name"]).stdout.split()
    assert "debug-full" in names and "go-leak" in names
    doc = json.loads(CliRunner().invoke(cli, ["templates", "-o", "json"]).stdout)
    assert [t["name"] for t in doc] == names
    leak = next(t for t in doc if t["name"] == "go-leak")
    assert "snapshots" in [p["name"] for p in leak["parameters"]] and leak["collectors"]
    assert yaml.safe_load(CliRunner().invoke(cli, ["templates", "-o", "yaml"]).stdout) == doc


def test_help_loads_neither_the_kubernetes_client_nor_the_engine_nor_the_profile_reader() -> None:
    code = ("import sys; from debugcap.kubectl_plugin.cli import cli; "
            "heavy = {'kubernetes', 'debugcap.capture', 'debugcap.kube.client', 'google.protobuf', "
            "'debugcap.analysis.report', 'debugcap.analysis.pprof'} & set(sys.modules); "
            "assert not heavy, heavy")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_debug_lets_a_debugcap_error_through_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeKube(get=raising(errors.KubeError("cannot list debugcaptures: no answer"))))
    plain = CliRunner().invoke(cli, ["get"])
    assert plain.exit_code == 1 and plain.stderr == "Error: cannot list debugcaptures: no answer\n"
    debug = CliRunner().invoke(cli, ["--debug", "get"])
    assert isinstance(debug.exception, errors.KubeError)


def test_the_executable_exits_2_on_a_misplaced_flag_and_1_on_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "debugcap.kubectl_plugin.cli", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    misplaced = run("create", "pod/x", "--upload")
    assert misplaced.returncode == 2 and "--upload only applies with --local" in misplaced.stderr
    broken = run("get")
    assert broken.returncode == 1 and broken.stderr.startswith("Error: cannot load Kubernetes credentials")


def _capture(namespace: str, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-12-04T10:00:00Z"},
            "spec": {"template": "go-profile"}, "status": {"phase": "Completed", "pods": [{"name": "p"}]}}


def test_get_all_namespaces_lists_every_namespaces_captures_with_a_namespace_column(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, FakeKube(get=lambda path: {"items": [_capture("a", "one"), _capture("b", "two")]}))
    res = CliRunner().invoke(cli, ["get", "-A"])
    assert res.exit_code == 0, res.output
    assert kube.requests == [("GET", "/apis/debugcap.io/v1alpha1/debugcaptures", None)]  # cluster-wide
    header, first, second = res.stdout.splitlines()
    assert header.split()[:3] == ["NAMESPACE", "NAME", "PHASE"] and header.split()[-1] == "AGE"
    assert first.split()[:3] == ["a", "one", "Completed"] and second.split()[:2] == ["b", "two"]


@pytest.mark.parametrize("args", [["get", "-A", "cap-1"], ["get", "-A", "-n", "prod"]], ids=["with-name", "with-n"])
def test_get_all_namespaces_with_a_name_or_a_namespace_is_a_usage_error(args: list[str]) -> None:
    res = CliRunner().invoke(cli, [*args, "--kubeconfig", "/nonexistent/kubeconfig"])
    assert res.exit_code == 2 and "-A/--all-namespaces" in res.stderr, res.output


def test_the_node_fraction_default_shown_in_help_is_pprofs() -> None:
    from debugcap.analysis import pprof

    for verb in ("top", "diff"):
        assert f"[default: ({pprof.PPROF_NODE_FRACTION})" in CliRunner().invoke(cli, [verb, "--help"]).stdout


def test_help_lists_each_commands_own_line_without_loading_them() -> None:
    """cli.COMMANDS carries what --help shows, so --help imports no command module: each line must
    be the command's own short help."""
    import subprocess
    import sys

    for name, command in all_commands().items():
        assert COMMANDS[name][1] == command.get_short_help_str(limit=500), name
    code = ("import sys; from debugcap.kubectl_plugin.cli import main; sys.argv = ['kubectl-debugcap', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('debugcap.kubectl_plugin.commands.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]", out
    assert all(f"  {name} " in out for name in COMMANDS)
