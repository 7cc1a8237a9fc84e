"""Checking a DebugCapture spec: targets, parameters (camelCase to snake_case), ttl, a DebugTrigger's
firing (spec.firing: its fields, one pod only, the CRD's reasons), messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


FIRING = {"trigger": "api-pre-oom", "reason": "memoryPercentOfLimit",
          "value": "212.4 MiB of 256 MiB (83%) in use by the Go runtime", "observed": 83.0, "threshold": 80,
          "time": "2026-12-04T21:00:00Z"}


def test_a_firing_is_parsed_and_copied_to_the_status_as_it_was_given() -> None:
    request = parse_spec({"target": {"pod": "api-1", "container": "app"}, "template": "go-heap", "firing": FIRING})
    firing = request.firing
    assert firing is not None and (firing.trigger, firing.reason, firing.observed, firing.threshold) == (
        "api-pre-oom", "memoryPercentOfLimit", 83.0, 80.0)
    assert firing.time == datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    assert firing.as_status() == {**FIRING, "threshold": 80.0}
    assert request.urgent  # a memory firing races the OOM kill
    # An alert may have no number; a restart is a post-mortem, not a race.
    alert = parse_spec({"target": {"pod": "a"}, "firing": {"trigger": "t", "reason": "alert", "value": "HighHeap",
                                                           "time": "2026-12-04T21:00:00.5+01:00"}})
    assert alert.firing is not None and alert.firing.observed is None and "observed" not in alert.firing.as_status()
    assert alert.firing.as_status()["time"] == "2026-12-04T20:00:00Z"
    restart = parse_spec({"target": {"pod": "a"}, "firing": {**FIRING, "reason": "restarted", "observed": 3}})
    assert not alert.urgent and not restart.urgent and not parse_spec({"target": {"pod": "a"}}).urgent


@pytest.mark.parametrize("firing, message", [
    ("memory", "spec.firing must be an object"),
    ({**FIRING, "trigger": ""}, "spec.firing.trigger must be a non-empty string"),
    ({**FIRING, "trigger": "t" * 254}, "spec.firing.trigger is 254 characters long; at most 253"),
    ({**FIRING, "reason": "cpu"}, "spec.firing.reason 'cpu' is not one of memoryPercentOfLimit, goroutines"),
    ({**FIRING, "value": 83}, "spec.firing.value must be a non-empty string"),
    ({**FIRING, "value": "x" * 1025}, "spec.firing.value is 1025 characters long"),
    ({**FIRING, "observed": "83%"}, "spec.firing.observed must be a number"),
    ({**FIRING, "threshold": True}, "spec.firing.threshold must be a number"),
    ({**FIRING, "time": "yesterday"}, "spec.firing.time 'yesterday' is not an RFC 3339 time"),
    ({**FIRING, "time": "2026-12-04T21:00:00"}, "spec.firing.time .* is not an RFC 3339 time with a zone"),
    ({k: v for k, v in FIRING.items() if k != "time"}, "spec.firing.time must be a non-empty string"),
    ({**FIRING, "command": "id"}, "spec.firing.command is not a field of spec.firing"),
], ids=["not-object", "no-trigger", "long-trigger", "bad-reason", "value-not-text", "long-value", "observed-text",
        "threshold-bool", "bad-time", "naive-time", "no-time", "unknown-field"])
def test_a_bad_firing_names_its_field(firing: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec({"target": {"pod": "api-1"}, "firing": firing})


@pytest.mark.parametrize("target", [{"selector": {"matchLabels": {"app": "api"}}},
                                    {"workload": {"kind": "Deployment", "name": "api"}}], ids=["selector", "workload"])
def test_a_firing_captures_exactly_one_pod(target: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"^spec\.target: a capture fired by a DebugTrigger .* exactly one pod"):
        parse_spec({"target": target, "firing": FIRING})


def test_crd_firing_reasons_and_columns_are_the_operators() -> None:
    from debugcap.resources import FIRING_REASONS

    crd = yaml.safe_load((CRDS / "debugcap.io_debugcaptures.yaml").read_text())
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    firing = schema["spec"]["properties"]["firing"]
    assert firing["properties"]["reason"]["enum"] == list(FIRING_REASONS)
    assert set(firing["properties"]) == set(FIRING)
    assert set(firing["required"]) == {"trigger", "reason", "value", "time"}
    assert set(schema["status"]["properties"]["firing"]["properties"]) == set(FIRING)  # the copy has every field
    assert {"name": "Fired By", "jsonPath": ".spec.firing.reason"}.items() <= next(
        c for c in version["additionalPrinterColumns"] if c["name"] == "Fired By").items()
    assert "go-heap" in schema["spec"]["properties"]["template"]["description"]
