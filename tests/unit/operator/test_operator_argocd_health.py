"""The Argo CD health checks and Flux health expressions, run as those tools run them.

Cases: Argo CD's own test cases of each kind (deploy/argocd/.../health_test.yaml: Progressing,
Healthy, Degraded, Suspended on live objects taken from the testbed) through gopher-lua with
Argo CD's default libraries; the same objects through the documented Flux healthCheckExprs in
cel-go (InProgress, Current, Failed); a capture before the operator wrote anything, and one whose
spec was edited; the test inputs hold only reasons the operator writes and findings a rule gives;
the argocd-cm snippet holds exactly the scripts tested, docs/health.md the
expressions tested; the runner refuses what Argo CD refuses (the string library, an invalid
status), so a script passing here does not lean on something Argo CD lacks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow  # builds the two Go runners

RUNNERS = Path(__file__).resolve().parents[2] / "fixtures" / "healthchecks" / "runners.py"
_spec = importlib.util.spec_from_file_location("healthcheck_runners", RUNNERS)
assert _spec is not None and _spec.loader is not None
runners = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runners)

# Argo CD's verdict and the Flux (kstatus) one the documented expressions give for the same object.
FLUX_FOR = {"DebugCapture": {"Progressing": "InProgress", "Healthy": "Current", "Degraded": "Failed"},
            "DebugSchedule": {"Progressing": "Current", "Healthy": "Current", "Degraded": "Failed",
                              "Suspended": "Current"}}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return runners.build(tmp_path_factory.mktemp("healthchecks"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", runners.KINDS)
def test_argocd_test_cases_pass(built: tuple[Path, Path], kind: str) -> None:
    cases = runners.argocd_cases(kind)
    got = runners.argocd_health(built[0], kind, [obj for _, obj, _ in cases])
    assert {path: dict(g) for (path, _, _), g in zip(cases, got, strict=True)} == {
        path: expected for path, _, expected in cases}
    statuses = {expected["status"] for _, _, expected in cases}
    assert statuses >= {"Progressing", "Healthy", "Degraded"}


@pytest.mark.parametrize("kind", runners.KINDS)
def test_flux_expressions_judge_the_same_objects(built: tuple[Path, Path], kind: str, tmp_path: Path) -> None:
    cases = runners.argocd_cases(kind)
    got = runners.flux_health(built[1], kind, [obj for _, obj, _ in cases], tmp_path)
    assert dict(zip([p for p, _, _ in cases], got, strict=True)) == {
        path: FLUX_FOR[kind][expected["status"]] for path, _, expected in cases}


def test_a_capture_the_operator_has_not_written_to_yet(built: tuple[Path, Path], tmp_path: Path) -> None:
    fresh: dict[str, Any] = {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
                             "metadata": {"name": "x", "generation": 1}, "spec": {"target": {"pod": "x"}},
                             "status": {}}
    [argocd] = runners.argocd_health(built[0], "DebugCapture", [fresh])
    assert argocd["status"] == "Progressing"
    assert runners.flux_health(built[1], "DebugCapture", [fresh], tmp_path) == ["InProgress"]


def test_an_edited_spec_is_in_progress_for_flux_and_degraded_for_argocd(built: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    [(_, done, _)] = [c for c in runners.argocd_cases("DebugCapture") if c[0] == "testdata/healthy.yaml"]
    edited = {**done, "metadata": {**done["metadata"], "generation": 2}}
    stalled = {"type": "Stalled", "status": "True", "reason": "SpecChangeIgnored", "message": "spec changed",
               "observedGeneration": 2, "lastTransitionTime": "2026-12-04T18:45:00Z"}
    edited["status"] = {**done["status"], "conditions": [
        c for c in done["status"]["conditions"] if c["type"] != "Stalled"] + [stalled]}
    [argocd] = runners.argocd_health(built[0], "DebugCapture", [edited])
    assert (argocd["status"], argocd["message"]) == ("Degraded", "spec changed")
    # status.observedGeneration stays at the generation captured: not reconciled, in kstatus terms.
    assert runners.flux_health(built[1], "DebugCapture", [edited], tmp_path) == ["InProgress"]


def test_the_argocd_cm_snippet_holds_the_tested_scripts() -> None:
    data = yaml.safe_load((runners.ARGOCD / "argocd-cm.yaml").read_text())["data"]
    for kind in runners.KINDS:
        script = (runners.CUSTOMIZATIONS / kind / "health.lua").read_text()
        assert data[f"resource.customizations.health.debugcap.io_{kind}"] == script


def test_the_documented_flux_expressions_are_the_tested_ones() -> None:
    docs = (runners.REPO / "docs" / "health.md").read_text()
    for kind in runners.KINDS:
        for name, expr in runners.flux_exprs(kind).items():
            assert f'{name}: "{expr}"' in docs, (kind, name)


def test_the_test_inputs_hold_what_the_operator_writes_today() -> None:
    """The inputs are live objects of one testbed run; an old run kept reasons the operator no
    longer writes (HighSeverityFindings) and findings no rule gives (profiler-own)."""
    rules = (runners.REPO / "docs" / "findings.md").read_text()
    operator = "".join(p.read_text() for p in (runners.REPO / "debugcap" / "operator").glob("*.py"))
    for kind in runners.KINDS:
        for path, obj, _ in runners.argocd_cases(kind):
            pods = (obj.get("status") or {}).get("pods") or []
            for where in [obj.get("status") or {}, *pods]:
                for condition in where.get("conditions") or []:
                    assert f'"{condition["reason"]}"' in operator, (kind, path, condition["reason"])
            for pod in pods:
                for finding in pod.get("findings") or []:
                    assert f"| `{finding['kind']}` |" in rules, (kind, path, finding["kind"])


def test_the_runner_refuses_what_argocd_refuses(built: tuple[Path, Path], tmp_path: Path) -> None:
    for name, body in (("strings.lua", 'return {status = string.upper("healthy")}'),
                       ("invalid.lua", 'return {status = "Fine", message = "x"}')):
        (tmp_path / name).write_text(body)
    [strings] = runners._run([str(built[0]), str(tmp_path / "strings.lua")], [{}])  # noqa: SLF001
    assert "string" in strings["error"]
    [invalid] = runners._run([str(built[0]), str(tmp_path / "invalid.lua")], [{}])  # noqa: SLF001
    assert invalid == {"status": "Unknown", "message": "Lua returned an invalid health status"}
