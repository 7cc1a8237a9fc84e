"""Checking a DebugCapture spec: targets, parameters (camelCase to snake_case), ttl, messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from debugcap import templates
from debugcap.collectors import COLLECTORS
from debugcap.errors import ConfigError
from debugcap.operator.config import DebugcapConfig, parse_duration
from debugcap.operator.requests import Workload, parse_spec, selector_to_string
from debugcap.operator.templating import template_document

CRDS = Path(__file__).resolve().parents[3] / "crds"


def test_full_spec_maps_parameters_to_template_names() -> None:
    request = parse_spec({"target": {"pod": "api-1", "container": "app", "maxPods": 3}, "template": "debug-full",
                          "parameters": {"cpuSeconds": 5, "traceSeconds": 2, "logLines": 50, "pprofPort": 6061,
                                         "timeoutSeconds": 9, "deadlineSeconds": 60}, "ttl": "1h30m"})
    assert request.pod == "api-1" and request.container == "app" and request.max_pods == 3
    assert request.template_parameters == {"cpu_seconds": 5, "trace_seconds": 2, "log_lines": 50}
    assert (request.pprof_port, request.timeout_seconds, request.deadline_seconds) == (6061, 9, 60)
    assert request.ttl == timedelta(minutes=90)
    # The mapped names are real parameters of the template, so expand accepts them.
    expanded = templates.expand("debug-full", request.template_parameters, collectors=COLLECTORS)
    assert expanded.parameters["cpu_seconds"] == 5


def test_defaults() -> None:
    request = parse_spec({"target": {"workload": {"kind": "StatefulSet", "name": "db"}}})
    assert request.workload == Workload("StatefulSet", "db")
    assert (request.template, request.max_pods, request.ttl) == ("go-profile", 10, None)


@pytest.mark.parametrize("spec, message", [
    ({"target": {"pod": "a", "selector": {"matchLabels": {"a": "b"}}}}, "exactly one of pod, selector, workload"),
    ({"target": {}}, "it sets none"),
    ({"target": {"pod": "a", "maxPods": 0}}, "spec.target.maxPods"),
    ({"target": {"workload": {"kind": "Job", "name": "x"}}}, "spec.target.workload"),
    ({"target": {"pod": "a"}, "parameters": {"command": "id"}}, "spec.parameters.command is not a parameter"),
    ({"target": {"pod": "a"}, "parameters": {"cpuSeconds": True}}, "spec.parameters.cpuSeconds"),
    ({"target": {"pod": "a"}, "ttl": "soon"}, "spec.ttl"),
    ({"target": {"selector": {}}}, "spec.target.selector"),
], ids=["two-targets", "no-target", "zero-maxPods", "bad-kind", "command", "bool-param", "bad-ttl", "empty-selector"])
def test_bad_spec_names_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_spec(spec)


def test_selector_text_covers_every_operator() -> None:
    text = selector_to_string({"matchLabels": {"app": "x"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "env", "operator": "NotIn", "values": ["p"]},
        {"key": "canary", "operator": "Exists"}, {"key": "debug", "operator": "DoesNotExist"}]}, where="s")
    assert text == "app=x,tier in (a,b),env notin (p),canary,!debug"


@pytest.mark.parametrize("text, seconds", [("10s", 10), ("90m", 5400), ("24h", 86400), ("7d", 604800),
                                           ("1h30m", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, field="x") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "1w", "0s", "h", "10s "])
def test_bad_durations_are_rejected(text: str) -> None:
    if text == "10s ":  # surrounding blanks are tolerated, they come from env files
        assert parse_duration(text, field="x") == timedelta(seconds=10)
        return
    with pytest.raises(ConfigError, match="x:"):
        parse_duration(text, field="x")


def test_operator_settings_from_env() -> None:
    settings = DebugcapConfig.from_env({
        "DEBUGCAP_OPERATOR_CONCURRENCY": "2", "DEBUGCAP_OPERATOR_NAMESPACES": "a, b",
        "DEBUGCAP_OPERATOR_DEFAULT_TTL": "2h", "DEBUGCAP_OPERATOR_SCHEDULED_TTL": "3h",
        "DEBUGCAP_OPERATOR_METRICS_PORT": "9090"})
    assert (settings.concurrency, settings.namespaces, settings.metrics_port) == (2, ("a", "b"), 9090)
    assert (settings.default_ttl, settings.scheduled_ttl) == (timedelta(hours=2), timedelta(hours=3))
    with pytest.raises(ConfigError, match="DEBUGCAP_OPERATOR_CONCURRENCY"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_CONCURRENCY": "0"})


def test_the_analysis_reads_traces_up_to_4_mib_unless_configured() -> None:
    assert DebugcapConfig.from_env({}).analysis_trace_limit == 4 << 20
    configured = DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB": "12"})
    assert configured.analysis_trace_limit == 12 << 20
    assert DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB": "0"}).analysis_trace_limit == 0
    with pytest.raises(ConfigError, match="DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB": "-1"})


def test_crd_collector_enum_lists_every_registered_collector() -> None:
    crd = yaml.safe_load((CRDS / "debugcap.io_debugcapturetemplates.yaml").read_text())
    steps = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["steps"]
    assert steps["items"]["properties"]["collector"]["enum"] == list(COLLECTORS)


def test_crd_parameters_are_the_ones_the_operator_maps() -> None:
    from debugcap.operator.requests import ACCESS_PARAMETERS, ENGINE_PARAMETERS, TEMPLATE_PARAMETERS

    crd = yaml.safe_load((CRDS / "debugcap.io_debugcaptures.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]["parameters"]["properties"]) == {*TEMPLATE_PARAMETERS, *ENGINE_PARAMETERS,
                                                                   *ACCESS_PARAMETERS}


def test_template_object_spec_parses_as_a_template() -> None:
    document = template_document("mine", {"parameters": {"n": {"type": "int", "default": 3}},
                                          "steps": [{"collector": "logs", "params": {"lines": "${n}"}}]})
    parsed = templates.parse_template(yaml.safe_dump(document))
    assert [s.collector for s in parsed.steps] == ["logs"] and parsed.parameters["n"].default == 3


def test_access_parameters_reach_the_request_and_must_be_strings() -> None:
    request = parse_spec({"target": {"pod": "x"}, "parameters": {"commandMode": "ephemeral", "transport": "proxy",
                                                                 "debugImage": "mirror/busybox:1"}})
    assert (request.command_mode, request.transport, request.debug_image) == ("ephemeral", "proxy", "mirror/busybox:1")
    with pytest.raises(ConfigError, match="spec.parameters.commandMode must be a non-empty string"):
        parse_spec({"target": {"pod": "x"}, "parameters": {"commandMode": 3}})


def test_operator_switches_for_debug_containers_from_the_environment() -> None:
    config = DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS": "false",
                                      "DEBUGCAP_OPERATOR_DEBUG_IMAGE": "mirror/busybox:1",
                                      "DEBUGCAP_OPERATOR_ALLOWED_DEBUG_IMAGES": "a:1, b:2",
                                      "DEBUGCAP_OPERATOR_COMMAND_MODE": "exec", "DEBUGCAP_OPERATOR_TRANSPORT": "proxy"})
    assert (config.ephemeral_containers, config.debug_image, config.allowed_debug_images) == \
        (False, "mirror/busybox:1", ("a:1", "b:2"))
    assert (config.command_mode, config.http_transport) == ("exec", "proxy")
    assert DebugcapConfig.from_env({}).ephemeral_containers is True
    with pytest.raises(ConfigError, match="DEBUGCAP_OPERATOR_COMMAND_MODE='always' is not one of auto, exec"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_COMMAND_MODE": "always"})
    with pytest.raises(ConfigError, match="DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS='maybe'"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS": "maybe"})
    # A contradiction is a start-up error, not a failure of every capture.
    with pytest.raises(ConfigError, match="COMMAND_MODE=ephemeral needs debug containers"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_COMMAND_MODE": "ephemeral",
                                 "DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS": "false"})


def test_capture_settings_apply_the_operators_switch_and_image_allowlist() -> None:
    from debugcap.operator.capturing import capture_settings

    def spec(**params: str) -> Any:
        return parse_spec({"target": {"pod": "x"}, "parameters": params})

    config = DebugcapConfig(debug_image="mirror/busybox:1", allowed_debug_images=("mirror/toolbox:2",))
    assert capture_settings(config, spec()).command_mode == "auto"
    assert capture_settings(config, spec()).debug_image == "mirror/busybox:1"
    assert capture_settings(config, spec(debugImage="mirror/toolbox:2")).debug_image == "mirror/toolbox:2"
    assert capture_settings(config, spec(transport="direct")).http_transport == "direct"
    # Whoever may create a DebugCapture must not choose code to run in someone's pod.
    with pytest.raises(ConfigError, match='debugImage "evil/shell:1" is not an image this operator may run'):
        capture_settings(config, spec(debugImage="evil/shell:1"))
    off = DebugcapConfig(ephemeral_containers=False)
    assert capture_settings(off, spec()).command_mode == "exec"  # auto without the debug container
    with pytest.raises(ConfigError, match="debugContainer.enabled"):
        capture_settings(off, spec(commandMode="ephemeral"))
