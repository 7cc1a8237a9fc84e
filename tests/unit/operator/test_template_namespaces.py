"""Who may use a DebugCaptureTemplate, and where its commands run (issue 16, hostile users).

Cases:
* spec.allowedNamespaces: a capture in a namespace it does not list is refused, the message naming
  the template, the namespace and the field; a listed namespace is served; an empty list serves none
* spec.namespaceSelector: the namespace's labels are read (get namespaces) and matched (matchLabels,
  In/NotIn/Exists/DoesNotExist); a namespace that does not match is refused naming the field; both
  fields set: a namespace must pass both; unreadable labels refuse, naming the missing right
* "command" steps (admin commands in the target container) in a namespace without the label
  debugcap.io/commands=allowed are skipped with the reason and the fix, the other steps kept; the
  label, or the operator's DEBUGCAP_OPERATOR_COMMAND_NAMESPACES, lets them run; unreadable labels
  skip them too
* built-in templates serve every namespace and never read it
* the create handler: a refused template fails the capture with that message; the admin-command
  template's capture in an unlabelled namespace hands the pod scheduler no command to run
* a DebugTrigger whose template does not serve its namespace is Stalled with that message
* the CRD carries both fields; DEBUGCAP_OPERATOR_COMMAND_NAMESPACES is read
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import operator_fakes
import pytest
import yaml

from debugcap import errors
from debugcap.operator import captures, runtime, targets, templating, trigger_runs
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.requests import CaptureRequest
from debugcap.operator.results import PodResult

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = "/apis/debugcap.io/v1alpha1/debugcapturetemplates/{name}"
NAMESPACE = "/api/v1/namespaces/{name}"
STATUS = "/apis/debugcap.io/v1alpha1/namespaces/{ns}/debugcaptures/cap/status"

ADMIN_COMMANDS = {"steps": [{"collector": "pod-yaml"},
                            {"collector": "command", "params": {"name": "iptables", "argv": ["iptables-save"]}},
                            {"collector": "logs"}]}


def template_object(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCaptureTemplate", "metadata": {"name": name},
            "spec": spec}


def namespace_object(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def kube_with(templates: dict[str, dict[str, Any]], namespaces: dict[str, dict[str, str]] | None = None,
              **extra: Any) -> Any:
    answers: dict[str, Any] = {TEMPLATE.format(name=n): template_object(n, s) for n, s in templates.items()}
    answers.update({NAMESPACE.format(name=n): namespace_object(n, labels)
                    for n, labels in (namespaces or {}).items()})
    answers.update(extra)
    return operator_fakes.FakeKube(answers)


def expand(kube: Any, template: str, namespace: str, **kw: Any) -> Any:
    return templating.expand_for_namespace(kube, CaptureRequest(pod="api-1", template=template), namespace, **kw)


def namespace_reads(kube: Any) -> list[str]:
    return [path for method, path, _ in kube.calls if method == "GET" and path.startswith("/api/v1/namespaces/")]


# --- spec.allowedNamespaces ----------------------------------------------------------------------

def test_a_namespace_the_template_does_not_list_is_refused_naming_template_namespace_and_field() -> None:
    kube = kube_with({"shop-only": {"allowedNamespaces": ["shop"], "steps": [{"collector": "pod-yaml"}]}})
    with pytest.raises(errors.ConfigError) as refused:
        expand(kube, "shop-only", "web")
    message = str(refused.value)
    assert 'DebugCaptureTemplate "shop-only"' in message and 'namespace "web"' in message
    assert "spec.allowedNamespaces" in message and "lists shop" in message
    assert message.startswith("spec.template: ")
    assert namespace_reads(kube) == []  # a list needs no labels


def test_a_listed_namespace_is_served() -> None:
    kube = kube_with({"shop-only": {"allowedNamespaces": ["shop", "web"], "steps": [{"collector": "pod-yaml"}]}})
    assert expand(kube, "shop-only", "web").collectors == ("pod-yaml",)


def test_an_empty_list_serves_no_namespace() -> None:
    kube = kube_with({"nobody": {"allowedNamespaces": [], "steps": [{"collector": "pod-yaml"}]}})
    with pytest.raises(errors.ConfigError, match='lists none'):
        expand(kube, "nobody", "default")


# --- spec.namespaceSelector ----------------------------------------------------------------------

PROD = {"matchLabels": {"team": "payments"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]},
                             {"key": "frozen", "operator": "DoesNotExist"}]}


@pytest.mark.parametrize(("labels", "served"), [
    ({"team": "payments", "env": "prod"}, True),
    ({"team": "payments", "env": "staging", "other": "x"}, True),
    ({"team": "payments", "env": "dev"}, False),
    ({"team": "search", "env": "prod"}, False),
    ({"team": "payments", "env": "prod", "frozen": "yes"}, False),
    ({}, False),
], ids=["match", "match-extra-labels", "env-not-in", "wrong-team", "frozen", "unlabelled"])
def test_a_namespace_selector_matches_the_namespaces_labels(labels: dict[str, str], served: bool) -> None:
    kube = kube_with({"payments": {"namespaceSelector": PROD, "steps": [{"collector": "pod-yaml"}]}},
                     {"pay": labels})
    if served:
        assert expand(kube, "payments", "pay").collectors == ("pod-yaml",)
    else:
        with pytest.raises(errors.ConfigError) as refused:
            expand(kube, "payments", "pay")
        message = str(refused.value)
        assert 'DebugCaptureTemplate "payments"' in message and 'namespace "pay"' in message
        assert "spec.namespaceSelector" in message and "team=payments" in message
    assert namespace_reads(kube) == [NAMESPACE.format(name="pay")]


def test_not_in_and_exists_match_as_in_kubernetes() -> None:
    selector = {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["system"]},
                                     {"key": "owner", "operator": "Exists"}]}
    match = templating.selector_matches
    assert match(selector, {"owner": "a"}, where="x")  # NotIn holds for a missing key
    assert match(selector, {"owner": "a", "tier": "web"}, where="x")
    assert not match(selector, {"owner": "a", "tier": "system"}, where="x")
    assert not match(selector, {"tier": "web"}, where="x")
    assert match({}, {}, where="x")  # an empty selector matches everything, as in Kubernetes


def test_both_fields_a_namespace_must_pass_both() -> None:
    spec = {"allowedNamespaces": ["pay", "web"], "namespaceSelector": {"matchLabels": {"team": "payments"}},
            "steps": [{"collector": "pod-yaml"}]}
    kube = kube_with({"payments": spec}, {"pay": {"team": "payments"}, "web": {"team": "search"},
                                          "other": {"team": "payments"}})
    assert expand(kube, "payments", "pay").collectors == ("pod-yaml",)
    with pytest.raises(errors.ConfigError, match="spec.namespaceSelector"):
        expand(kube, "payments", "web")
    with pytest.raises(errors.ConfigError, match="spec.allowedNamespaces"):
        expand(kube, "payments", "other")


def test_unreadable_namespace_labels_refuse_a_selector_template_naming_the_right() -> None:
    forbidden = errors.KubeError('namespaces "pay" is forbidden: cannot get resource "namespaces"')
    kube = kube_with({"payments": {"namespaceSelector": PROD, "steps": [{"collector": "pod-yaml"}]}},
                     **{NAMESPACE.format(name="pay"): forbidden})
    with pytest.raises(errors.ConfigError, match="get on namespaces"):
        expand(kube, "payments", "pay")


# --- command steps: opt-in per namespace ---------------------------------------------------------

def test_admin_commands_are_skipped_in_a_namespace_that_has_not_opted_in() -> None:
    kube = kube_with({"net-admin": ADMIN_COMMANDS}, {"web": {}})
    got = expand(kube, "net-admin", "web")
    assert got.collectors == ("pod-yaml", "command", "logs")
    pod_yaml, command, logs = got.steps
    assert not pod_yaml.skipped and not logs.skipped  # the rest of the capture proceeds
    assert command.params == {}  # nothing of the command is left to run
    assert 'template "net-admin" runs commands in the container' in command.skipped
    assert 'namespace "web" has not opted in' in command.skipped
    assert "kubectl label namespace web debugcap.io/commands=allowed" in command.skipped
    assert "DEBUGCAP_OPERATOR_COMMAND_NAMESPACES" in command.skipped


@pytest.mark.parametrize("value", ["true", "yes", "", "Allowed"])
def test_only_the_exact_label_value_opts_in(value: str) -> None:
    kube = kube_with({"net-admin": ADMIN_COMMANDS}, {"web": {"debugcap.io/commands": value}})
    assert expand(kube, "net-admin", "web").steps[1].skipped


def test_the_label_lets_the_commands_run() -> None:
    kube = kube_with({"net-admin": ADMIN_COMMANDS}, {"web": {"debugcap.io/commands": "allowed"}})
    command = expand(kube, "net-admin", "web").steps[1]
    assert not command.skipped and command.params["argv"] == ["iptables-save"]


def test_the_operator_setting_lets_the_commands_run_without_reading_the_namespace() -> None:
    kube = kube_with({"net-admin": ADMIN_COMMANDS})
    command = expand(kube, "net-admin", "web", command_namespaces=("web",)).steps[1]
    assert not command.skipped
    assert namespace_reads(kube) == []


def test_unreadable_labels_skip_the_commands_and_say_why() -> None:
    forbidden = errors.KubeError('namespaces "web" is forbidden')
    kube = kube_with({"net-admin": ADMIN_COMMANDS}, **{NAMESPACE.format(name="web"): forbidden})
    command = expand(kube, "net-admin", "web").steps[1]
    assert "its labels cannot be read" in command.skipped and "forbidden" in command.skipped


def test_built_in_templates_serve_every_namespace_without_reading_it() -> None:
    kube = kube_with({})
    for namespace in ("default", "kube-system", "web"):
        got = expand(kube, "debug-full", namespace)
        assert not any(s.skipped for s in got.steps)
    assert kube.calls == []


# --- through the handlers ------------------------------------------------------------------------

class Pods:
    """The pod scheduler: notes the steps each pod would run."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, ...]] = []
        self.skipped: list[tuple[str, str]] = []

    async def capture(self, run: Any, namespace: str, pod: str, work: Any, **_: Any) -> PodResult:
        self.ran.append(tuple(s.collector for s in work.template.steps if not s.skipped))
        self.skipped.extend((s.collector, s.skipped) for s in work.template.steps if s.skipped)
        return PodResult(name=pod, phase="Completed", key=f"k/{pod}.tar.gz")


def run_capture(monkeypatch: pytest.MonkeyPatch, kube: Any, namespace: str, template: str,
                config: DebugcapConfig | None = None) -> tuple[Pods, list[dict[str, Any]]]:
    kube.answers[STATUS.format(ns=namespace)] = {"metadata": {"name": "cap"}}
    pods = Pods()
    rt: Any = runtime.Runtime(config=config or DebugcapConfig(), kube=kube, store=None,  # type: ignore[arg-type]
                              executor=None, pods=pods)  # type: ignore[arg-type]
    monkeypatch.setattr(kopf, "event", lambda *_a, **_kw: None)
    monkeypatch.setattr(targets, "find_pods", lambda _kube, _ns, request: targets.PodSelection(pods=("api-1",)))
    body = kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",  # type: ignore[typeddict-item]
                      "metadata": {"name": "cap", "namespace": namespace, "uid": "u1", "generation": 1},
                      "spec": {"target": {"pod": "api-1"}, "template": template}})
    try:
        asyncio.run(captures._run_capture(rt, body))
    except kopf.PermanentError:
        pass
    return pods, [call[2]["status"] for call in kube.calls if call[0] == "PATCH"]


def test_a_capture_in_a_namespace_the_template_does_not_serve_fails_saying_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_with({"shop-only": {"allowedNamespaces": ["shop"], "steps": [{"collector": "pod-yaml"}]}})
    pods, writes = run_capture(monkeypatch, kube, "kube-system", "shop-only")
    assert pods.ran == []
    final = writes[-1]
    assert final["phase"] == "Failed"
    assert 'DebugCaptureTemplate "shop-only"' in final["message"] and 'namespace "kube-system"' in final["message"]
    assert "spec.allowedNamespaces" in final["message"]


def test_the_admin_command_template_runs_no_command_in_an_unlabelled_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_with({"net-admin": ADMIN_COMMANDS}, {"web": {}})
    pods, writes = run_capture(monkeypatch, kube, "web", "net-admin")
    assert pods.ran == [("pod-yaml", "logs")]
    [(collector, why)] = pods.skipped
    assert collector == "command" and "debugcap.io/commands=allowed" in why
    assert writes[-1]["phase"] != "Failed"


def test_the_admin_command_template_runs_its_command_where_the_operator_lists_the_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_with({"net-admin": ADMIN_COMMANDS}, {"web": {}})
    pods, _ = run_capture(monkeypatch, kube, "web", "net-admin", DebugcapConfig(command_namespaces=("web",)))
    assert pods.ran == [("pod-yaml", "command", "logs")]


def test_a_trigger_whose_template_does_not_serve_its_namespace_is_stalled() -> None:
    from debugcap.operator import triggering
    kube = kube_with({"shop-only": {"allowedNamespaces": ["shop"], "steps": [{"collector": "pod-yaml"}]}})
    rt: Any = runtime.Runtime(config=DebugcapConfig(), kube=kube, store=None, executor=None,  # type: ignore[arg-type]
                              pods=None)  # type: ignore[arg-type]
    spec = triggering.parse_trigger({"target": {"pod": "api-1"}, "template": "shop-only",
                                     "when": {"restarted": True}})
    problem = asyncio.run(trigger_runs.template_problem(rt, spec, "web"))
    assert 'does not serve namespace "web"' in problem and "spec.allowedNamespaces" in problem
    assert asyncio.run(trigger_runs.template_problem(rt, spec, "shop")) == ""


# --- the CRD and the setting ---------------------------------------------------------------------

def test_the_crd_carries_both_fields() -> None:
    crd = yaml.safe_load((REPO / "crds" / "debugcap.io_debugcapturetemplates.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["allowedNamespaces"]["items"]["type"] == "string"
    selector = spec["namespaceSelector"]["properties"]
    assert set(selector) == {"matchLabels", "matchExpressions"}
    assert selector["matchExpressions"]["items"]["properties"]["operator"]["enum"] == [
        "In", "NotIn", "Exists", "DoesNotExist"]


def test_the_command_namespaces_setting_is_read() -> None:
    config = DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_COMMAND_NAMESPACES": "web, ops"})
    assert config.command_namespaces == ("web", "ops")
    assert DebugcapConfig.from_env({}).command_namespaces == ()


def test_the_templates_status_says_who_may_use_it_and_where_its_commands_run() -> None:
    from debugcap.operator import capture_templates
    patch = kopf.Patch()
    capture_templates.check_template(name="net-admin", spec={**ADMIN_COMMANDS, "allowedNamespaces": ["web"]},
                                     patch=patch)
    message = patch["status"]["message"]
    assert patch["status"]["valid"] is True and message.startswith("3 step(s): pod-yaml, command, logs")
    assert "serves only namespaces web" in message
    assert "command steps run only in namespaces labelled debugcap.io/commands=allowed" in message
