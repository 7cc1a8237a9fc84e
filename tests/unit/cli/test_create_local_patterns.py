"""`kubectl debugcap create --local --patterns FILE`: the patterns reach the engine's settings; a bad
file is a usage error naming the pattern before anything is read from the cluster; without --local
the flag is misplaced (the operator's patterns are its setting and the template's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from debugcap.kubectl_plugin.cli import cli

from .fakes import FakeKube, use
from .test_create_local import engine_calls  # noqa: F401  (a fixture)


def test_patterns_reach_the_capture_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             engine_calls: dict[str, Any]) -> None:  # noqa: F811
    use(monkeypatch, FakeKube())
    patterns = tmp_path / "acme.yaml"
    patterns.write_text("- {name: acme-token, regex: 'acme_[A-Za-z0-9]{32}'}\n")
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--local", "-t", "disk-usage", "--patterns", str(patterns),
                                   "--output-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert engine_calls["settings"].redaction_patterns == (("acme-token", "acme_[A-Za-z0-9]{32}"),)


def test_a_bad_patterns_file_is_a_usage_error_before_the_kubeconfig_is_read(tmp_path: Path) -> None:
    patterns = tmp_path / "acme.yaml"
    patterns.write_text("- {name: acme-token, regex: 'acme_\\1'}\n")
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--local", "--patterns", str(patterns)],
                             env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})
    assert res.exit_code == 2, res.output
    assert "--patterns" in res.stderr and '"acme-token"' in res.stderr and "back-references" in res.stderr
    assert "credentials" not in res.stderr


def test_patterns_without_local_are_misplaced(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--patterns", str(tmp_path / "p.yaml")],
                             env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})
    assert res.exit_code == 2 and "--patterns only applies with --local" in res.stderr
