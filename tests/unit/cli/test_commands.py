"""What holds for every command: `-o` means the output format, and `--help` loads no cluster client."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import yaml
from click.testing import CliRunner

from debugcap.kubectl_plugin.cli import cli

FORMATS = {"table", "wide", "name", "json", "yaml"}


def test_o_is_the_output_format_in_every_command() -> None:
    seen = []
    for name, command in cli.commands.items():
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


def test_help_loads_neither_the_kubernetes_client_nor_the_engine() -> None:
    code = ("import sys; from debugcap.kubectl_plugin.cli import cli; "
            "heavy = {'kubernetes', 'debugcap.capture', 'debugcap.kube.client'} & set(sys.modules); "
            "assert not heavy, heavy")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
