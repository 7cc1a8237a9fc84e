"""`kubectl debugcap create --local`: --patterns held to the template's own patterns (the same name
with another regex is a usage error naming both, not a capture that fails), and --patterns with
--no-redact refused (review of issue 16)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from debugcap import templates
from debugcap.kubectl_plugin.cli import cli

REGEX = "acme_[A-Za-z0-9]{32}"


def _template_with(monkeypatch: pytest.MonkeyPatch, pairs: tuple[tuple[str, str], ...]) -> None:
    real = templates.expand

    def expand(*args: Any, **kwargs: Any) -> templates.ExpandedTemplate:
        return dataclasses.replace(real(*args, **kwargs), redaction_patterns=pairs)

    monkeypatch.setattr(templates, "expand", expand)


def _create(tmp_path: Path, regex: str, *flags: str) -> Any:
    patterns = tmp_path / "acme.yaml"
    patterns.write_text(f"- {{name: acme-token, regex: '{regex}'}}\n")
    return CliRunner().invoke(cli, ["create", "pod/api-1", "--local", "-t", "disk-usage", "--patterns", str(patterns),
                                    *flags], env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})


def test_the_same_name_with_another_regex_in_the_template_is_a_usage_error_naming_both(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _template_with(monkeypatch, (("acme-token", "acme_[a-z]{8}"),))
    res = _create(tmp_path, REGEX)
    assert res.exit_code == 2, res.output
    assert 'template "disk-usage" redaction.patterns[0] ("acme-token")' in res.stderr
    assert f"--patterns {tmp_path / 'acme.yaml'}" in res.stderr and "another name" in res.stderr
    assert "acme_[" not in res.stderr  # the regexes are not shown


def test_the_same_name_and_regex_is_one_pattern(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _template_with(monkeypatch, (("acme-token", REGEX),))
    res = _create(tmp_path, REGEX)
    assert "another regex" not in res.stderr and '"acme-token"' not in res.stderr


def test_patterns_with_no_redact_is_a_usage_error(tmp_path: Path) -> None:
    res = _create(tmp_path, REGEX, "--no-redact")
    assert res.exit_code == 2 and "--patterns masks more, --no-redact masks nothing" in res.stderr
