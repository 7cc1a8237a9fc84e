"""`kubectl debugcap create --local`: the flags reach the engine's settings; the engine is faked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from debugcap import capture as engine
from debugcap import errors
from debugcap.kubectl_plugin.cli import cli

from .fakes import FakeKube, use


@dataclass
class Bundle:
    path: Path
    sha256: str = "0" * 64
    size: int = 2048


@dataclass
class Outcome:
    bundle: Bundle
    phase: engine.Phase


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def resolve_target(kube: Any, namespace: str, pod: str, container: str | None = None,
                       pprof_port: int | None = None) -> Any:
        seen.update(namespace=namespace, pod=pod, container=container, pprof_port=pprof_port)
        return type("Target", (), {"container": container or "app"})()

    def capture(kube: Any, target: Any, template: Any, *, out_dir: Path, capture_name: str, settings: Any,
                progress: Any, deadline_setting: str) -> Outcome:
        seen.update(out_dir=out_dir, capture_name=capture_name, settings=settings, template=template.name,
                    deadline_setting=deadline_setting)
        return Outcome(Bundle(out_dir / "b.tar.gz"), seen.get("phase", engine.Phase.COMPLETED))

    monkeypatch.setattr(engine, "resolve_target", resolve_target)
    monkeypatch.setattr(engine, "capture", capture)
    return seen


def test_local_flags_reach_the_capture_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                engine_calls: dict[str, Any]) -> None:
    kube = use(monkeypatch, FakeKube())
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--local", "-t", "disk-usage", "-c", "side",
                                   "--pprof-port", "7070", "--timeout", "5", "--deadline", "60", "--no-redact",
                                   "--name", "mine", "--output-dir", str(tmp_path / "new" / "dir")])
    assert res.exit_code == 0, res.output
    settings = engine_calls["settings"]
    assert (settings.capture_timeout_seconds, settings.exec_timeout_seconds, settings.redact) == (60, 5, False)
    assert settings.http_timeout_seconds == 5  # "each command or request": a trickling pprof GET too
    assert engine_calls["namespace"] == "team"  # the kubeconfig's, without -n
    assert (engine_calls["container"], engine_calls["pprof_port"]) == ("side", 7070)
    assert engine_calls["capture_name"] == "mine"
    assert engine_calls["deadline_setting"] == "--deadline"  # what a deadline message tells the user to raise
    assert engine_calls["out_dir"].is_dir()  # created, as validate() said it could be
    assert f"bundle: {tmp_path / 'new' / 'dir' / 'b.tar.gz'}" in res.stdout
    assert kube.closed


def test_a_capture_that_collected_nothing_exits_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  engine_calls: dict[str, Any]) -> None:
    use(monkeypatch, FakeKube())
    engine_calls["phase"] = engine.Phase.FAILED
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--local", "-t", "disk-usage",
                                   "--output-dir", str(tmp_path)])
    assert res.exit_code == 3, res.output


def test_an_engine_error_is_one_line_on_stderr_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          engine_calls: dict[str, Any]) -> None:
    use(monkeypatch, FakeKube())

    def missing(*_args: Any, **_kw: Any) -> Any:
        raise errors.TargetError('pod "team/api-1" is Pending, not Running')

    monkeypatch.setattr(engine, "resolve_target", missing)
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--local", "-t", "disk-usage",
                                   "--output-dir", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr == 'Error: pod "team/api-1" is Pending, not Running\n'
