"""Admin redaction patterns in the operator, and a template's namespaceSelector checked (issue 16).

Cases:
* a DebugCaptureTemplate's spec.redaction.patterns reach the expanded template; a malformed one is
  reported in the template's status (valid false, naming template, pattern and fix) and fails a
  capture (Failed, not a traceback) or stalls a trigger with that message
* DEBUGCAP_OPERATOR_REDACTION_PATTERNS (a file or inline) is read into every capture's settings;
  a bad one stops the operator at start-up (exit 2, the message naming the setting and the pattern)
* an invalid namespaceSelector (operator, label key, label value, In without values, Exists with
  values) is reported in the template's status and refuses a capture, naming template and field
* the CRD carries spec.redaction.patterns
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from test_template_namespaces import REPO, expand, kube_with, run_capture

from debugcap import errors
from debugcap.operator import capture_templates, main, runtime, trigger_runs, triggering
from debugcap.operator.capturing import capture_settings
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.requests import CaptureRequest

STEPS = [{"collector": "pod-yaml"}, {"collector": "logs"}]
ACME = {"name": "acme-token", "regex": "acme_[A-Za-z0-9]{32}"}
LOOKAHEAD = {"name": "acme-token", "regex": "acme_(?=[A-Za-z0-9]{32})"}


def status_of(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    patch = kopf.Patch()
    try:
        capture_templates.check_template(name=name, spec=spec, patch=patch)
    except kopf.PermanentError:
        pass
    return dict(patch["status"])


# --- spec.redaction.patterns ---------------------------------------------------------------------

def test_the_templates_patterns_reach_the_expanded_template() -> None:
    kube = kube_with({"acme": {"steps": STEPS, "redaction": {"patterns": [ACME]}}})
    assert expand(kube, "acme", "web").redaction_patterns == (("acme-token", ACME["regex"]),)
    status = status_of("acme", {"steps": STEPS, "redaction": {"patterns": [ACME]}})
    assert status["valid"] is True and status["message"].endswith("; masks custom:acme-token")


def test_a_malformed_pattern_is_in_the_templates_status_naming_template_pattern_and_fix() -> None:
    status = status_of("acme", {"steps": STEPS, "redaction": {"patterns": [LOOKAHEAD]}})
    assert status["valid"] is False
    message = status["message"]
    assert "DebugCaptureTemplate acme spec.redaction.patterns[0]" in message and '"acme-token"' in message
    assert "look-around" in message and "kubectl edit debugcapturetemplate acme" in message


def test_a_capture_of_a_template_with_a_malformed_pattern_fails_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_with({"acme": {"steps": STEPS, "redaction": {"patterns": [LOOKAHEAD]}}})
    pods, writes = run_capture(monkeypatch, kube, "web", "acme")
    assert pods.ran == []
    final = writes[-1]
    assert final["phase"] == "Failed"
    assert final["message"].startswith("spec.template: DebugCaptureTemplate acme spec.redaction.patterns[0]")
    assert "Traceback" not in final["message"]


def test_a_trigger_of_a_template_with_a_malformed_pattern_is_stalled() -> None:
    kube = kube_with({"acme": {"steps": STEPS, "redaction": {"patterns": [{"name": "e", "regex": "x*"}]}}})
    rt: Any = runtime.Runtime(config=DebugcapConfig(), kube=kube, store=None, executor=None,  # type: ignore[arg-type]
                              pods=None)  # type: ignore[arg-type]
    spec = triggering.parse_trigger({"target": {"pod": "api-1"}, "template": "acme", "when": {"restarted": True}})
    problem = asyncio.run(trigger_runs.template_problem(rt, spec, "web"))
    assert "DebugCaptureTemplate acme spec.redaction.patterns[0]" in problem and "empty string" in problem


# --- the operator's setting ----------------------------------------------------------------------

def test_the_setting_is_read_from_a_file_or_inline_into_each_captures_settings(tmp_path: Path) -> None:
    path = tmp_path / "patterns.yaml"
    path.write_text(yaml.safe_dump({"patterns": [ACME]}))
    from_file = DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_REDACTION_PATTERNS": str(path)})
    inline = DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_REDACTION_PATTERNS": '[{"name": "acme-token", '
                                                                              '"regex": "acme_[A-Za-z0-9]{32}"}]'})
    assert from_file.redaction_patterns == inline.redaction_patterns == (("acme-token", ACME["regex"]),)
    assert DebugcapConfig.from_env({}).redaction_patterns == ()
    settings = capture_settings(from_file, CaptureRequest(pod="api-1", template="debug-full"))
    assert settings.redaction_patterns == (("acme-token", ACME["regex"]),)


def test_a_bad_setting_stops_the_operator_with_a_clear_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "patterns.yaml"
    path.write_text(yaml.safe_dump([LOOKAHEAD]))
    monkeypatch.setenv("DEBUGCAP_OPERATOR_REDACTION_PATTERNS", str(path))
    monkeypatch.setattr(main.kopf, "run", lambda **_: pytest.fail("the operator started"))
    with pytest.raises(SystemExit) as stopped:
        main.main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"debugcap-operator: DEBUGCAP_OPERATOR_REDACTION_PATTERNS ({path})[0]")
    assert '"acme-token"' in err and "look-around" in err and "Traceback" not in err


# --- spec.namespaceSelector ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("selector", "words"),
    [
        ({"matchExpressions": [{"key": "team", "operator": "Equals", "values": ["a"]}]},
         ['matchExpressions[0]: operator "Equals"', "In, NotIn, Exists, DoesNotExist"]),
        ({"matchLabels": {"team/": "a"}}, ['matchLabels: "team/" is not a label key']),
        ({"matchLabels": {"-team": "a"}}, ['"-team" is not a label key']),
        ({"matchLabels": {"Example.com/team": "a"}}, ['"Example.com/team" is not a label key']),
        ({"matchLabels": {"team": "a b"}}, ['matchLabels["team"]', "is not a label value"]),
        ({"matchLabels": {"team": "x" * 64}}, ["is not a label value"]),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": []}]}, ['"team In" needs at least']),
        ({"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]}, ["takes no values"]),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["ok", "not ok"]}]},
         ["matchExpressions[0].values[1]", "is not a label value"]),
        ({"matchExpressions": [{"key": "bad key", "operator": "Exists"}]}, ['"bad key" is not a label key']),
    ],
)
def test_an_invalid_namespace_selector_is_reported_and_refuses_captures(selector: dict[str, Any],
                                                                        words: list[str]) -> None:
    spec = {"steps": STEPS, "namespaceSelector": selector}
    status = status_of("team-only", spec)
    assert status["valid"] is False
    for message in (status["message"], _refused(spec)):
        assert "DebugCaptureTemplate team-only spec.namespaceSelector" in message
        assert "kubectl edit debugcapturetemplate team-only" in message
        for word in words:
            assert word in message


def _refused(spec: dict[str, Any]) -> str:
    kube = kube_with({"team-only": spec}, {"web": {"team": "a"}})
    with pytest.raises(errors.ConfigError) as refused:
        expand(kube, "team-only", "web")
    return str(refused.value)


def test_a_valid_selector_with_a_prefixed_key_and_empty_value_is_fine() -> None:
    spec = {"steps": STEPS, "namespaceSelector": {"matchLabels": {"debugcap.io/team": "", "tier": "web_1.a"},
                                                  "matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}}
    assert status_of("ok", spec)["valid"] is True
    kube = kube_with({"ok": spec}, {"web": {"debugcap.io/team": "", "tier": "web_1.a"}})
    assert expand(kube, "ok", "web").name == "ok"


def test_the_crd_carries_redaction_patterns() -> None:
    crd = yaml.safe_load((REPO / "crds" / "debugcap.io_debugcapturetemplates.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    item = spec["redaction"]["properties"]["patterns"]["items"]
    assert item["required"] == ["name", "regex"] and item["properties"]["regex"]["maxLength"] == 1024


# --- a template's pattern against the operator's setting (review of issue 16) --------------------

OTHER = {"name": "acme-token", "regex": "acme_[a-z]{8}"}


def _runtime(kube: Any = None, patterns: tuple[tuple[str, str], ...] = ((ACME["name"], ACME["regex"]),)) -> Any:
    return runtime.Runtime(config=DebugcapConfig(redaction_patterns=patterns), kube=kube,  # type: ignore[arg-type]
                           store=None, executor=None, pods=None)  # type: ignore[arg-type]


def test_a_name_the_operator_defines_with_another_regex_makes_the_template_invalid() -> None:
    patch = kopf.Patch()
    memo = kopf.Memo(runtime=_runtime())
    spec = {"steps": STEPS, "redaction": {"patterns": [OTHER]}}
    with pytest.raises(kopf.PermanentError):
        capture_templates.check_template(name="acme", spec=spec, patch=patch, memo=memo)
    status = dict(patch["status"])
    assert status["valid"] is False
    message = status["message"]
    assert message.startswith('DebugCaptureTemplate acme spec.redaction.patterns[0] ("acme-token")')
    assert "DEBUGCAP_OPERATOR_REDACTION_PATTERNS" in message and "another name" in message
    assert "acme_[" not in message  # neither regex is shown
    same = kopf.Patch()
    capture_templates.check_template(name="acme", spec={"steps": STEPS, "redaction": {"patterns": [ACME]}},
                                     patch=same, memo=memo)
    assert same["status"]["valid"] is True


def test_a_capture_and_a_trigger_of_that_template_are_refused_once_with_that_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_with({"acme": {"steps": STEPS, "redaction": {"patterns": [OTHER]}}})
    config = DebugcapConfig(redaction_patterns=((ACME["name"], ACME["regex"]),))
    pods, writes = run_capture(monkeypatch, kube, "web", "acme", config=config)
    assert pods.ran == [] and writes[-1]["phase"] == "Failed"
    assert "spec.redaction.patterns[0] (\"acme-token\"): the operator's DEBUGCAP_OPERATOR_REDACTION_PATTERNS" \
        in writes[-1]["message"]
    spec = triggering.parse_trigger({"target": {"pod": "api-1"}, "template": "acme", "when": {"restarted": True}})
    problem = asyncio.run(trigger_runs.template_problem(_runtime(kube), spec, "web"))
    assert "DEBUGCAP_OPERATOR_REDACTION_PATTERNS" in problem and "another name" in problem


def test_a_lone_surrogate_in_the_setting_stops_the_operator_naming_the_pattern(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "patterns.yaml"
    path.write_text('- {name: acme-token, regex: "acme_\\udcff"}\n')
    monkeypatch.setenv("DEBUGCAP_OPERATOR_REDACTION_PATTERNS", str(path))
    monkeypatch.setattr(main.kopf, "run", lambda **_: pytest.fail("the operator started"))
    with pytest.raises(SystemExit) as stopped:
        main.main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and '[0] ("acme-token"): the regex holds a lone surrogate' in err
    assert "Traceback" not in err
