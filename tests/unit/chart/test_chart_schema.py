"""values.schema.json: the chart's values checked by helm before anything renders.

Cases:
* the default values, and values that use the free-form maps (annotations, labels, nodeSelector,
  tolerations, affinity, resources, security contexts, extraEnv) with keys of the user's own, render
* each bad value is refused by ``helm template`` (as by ``helm install``/``upgrade``), the message
  naming the value: an unknown key (a typo at the top, or inside a known object), a wrong type, a
  number out of range, a value outside an enum, a malformed duration or namespace name
* the schema's duration pattern agrees with the operator's parser on what is a duration
* every key of values.yaml is described in the schema, and the schema describes no value that
  values.yaml leaves out (``global`` aside, which Helm itself passes)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from debugcap.errors import ConfigError
from debugcap.operator.config import parse_duration

from .test_chart_namespaces import CHART, render, run_helm

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.mark.slow
def test_the_default_values_pass_the_schema(helm: Path) -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert any(d["kind"] == "Deployment" for d in render(helm))


@pytest.mark.slow
def test_free_form_maps_take_keys_of_the_users_own(helm: Path) -> None:
    docs = render(helm, "--set", "podAnnotations.example\\.com/owner=team-a", "--set", "podLabels.team=a",
                  "--set", "nodeSelector.kubernetes\\.io/os=linux",
                  "--set", "tolerations[0].key=dedicated", "--set", "tolerations[0].operator=Exists",
                  "--set-json", 'affinity={"nodeAffinity":{}}',
                  "--set", "resources.limits.cpu=1", "--set", "resources.limits.ephemeral-storage=1Gi",
                  "--set", "podSecurityContext.fsGroupChangePolicy=OnRootMismatch",
                  "--set", "securityContext.privileged=false",
                  "--set", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x",
                  "--set", "operator.extraEnv[0].name=HTTPS_PROXY",
                  "--set", "operator.extraEnv[0].valueFrom.secretKeyRef.name=proxy",
                  "--set", "operator.extraEnv[0].valueFrom.secretKeyRef.key=url",
                  "--set", "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
                  "--set", "imagePullSecrets[0].name=regcred")
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["annotations"]["example.com/owner"] == "team-a"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"] == "1Gi"


# (values, what the message must name)
BAD = {
    "typo-at-the-top": (("--set", "replica=2"), "additional properties 'replica' not allowed"),
    "typo-in-operator": (("--set", "operator.concurency=2"), "'concurency' not allowed"),
    "typo-deep": (("--set", "alertWebhook.token.secert=x"), "'/alertWebhook/token'"),
    "wrong-type-port": (("--set", "metrics.port=abc"), "'/metrics/port'"),
    "wrong-type-bool": (("--set", "debugContainer.enabled=yes"), "'/debugContainer/enabled'"),
    "wrong-type-list": (("--set", "namespaces=shop"), "'/namespaces'"),
    "zero-concurrency": (("--set", "operator.concurrency=0"), "'/operator/concurrency'"),
    "zero-triggered": (("--set", "operator.triggeredCaptures=0"), "'/operator/triggeredCaptures'"),
    "zero-lingering": (("--set", "operator.lingeringCaptures=0"), "'/operator/lingeringCaptures'"),
    "negative-trace-limit": (("--set", "operator.analysisTraceLimitMiB=-1"), "'/operator/analysisTraceLimitMiB'"),
    "port-out-of-range": (("--set", "liveness.port=70000"), "'/liveness/port'"),
    "zero-probe-period": (("--set", "readiness.periodSeconds=0"), "'/readiness/periodSeconds'"),
    "bad-transport": (("--set", "operator.transport=ssh"), "'/operator/transport'"),
    "bad-command-mode": (("--set", "debugContainer.commandMode=shell"), "'/debugContainer/commandMode'"),
    "bad-pull-policy": (("--set", "image.pullPolicy=Sometimes"), "'/image/pullPolicy'"),
    "bad-service-type": (("--set", "alertWebhook.service.type=ExternalName"), "'/alertWebhook/service/type'"),
    "go-style-week": (("--set", "operator.defaultTTL=1w"), "'/operator/defaultTTL'"),
    "duration-without-unit": (("--set", "operator.presignedTTL=300"), "'/operator/presignedTTL'"),
    "bad-namespace-name": (("--set", "namespaces={Shop}"), "'/namespaces/0'"),
    "pattern-without-regex": (("--set", "redaction.patterns[0].name=acme"), "'/redaction/patterns/0'"),
    "bad-pdb-percentage": (("--set", "podDisruptionBudget.maxUnavailable=half"),
                           "'/podDisruptionBudget/maxUnavailable'"),
    "bad-scrape-interval": (("--set", "metrics.serviceMonitor.interval=often"), "'/metrics/serviceMonitor/interval'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("values,named", BAD.values(), ids=BAD.keys())
def test_a_bad_value_is_refused_naming_it(helm: Path, values: tuple[str, ...], named: str) -> None:
    res = run_helm(helm, *values)
    assert res.returncode != 0, f"{values} rendered"
    assert "don't meet the specifications of the schema" in res.stderr, res.stderr
    assert named in res.stderr, res.stderr


@pytest.mark.parametrize("text", ["7d", "1d", "5m", "10s", "1h30m", "90m", "1d12h", "1w", "5", "1.5h", "",
                                  "h", "5M", "1h 30m", "-5m", "7days"])
def test_the_duration_pattern_is_the_operators(text: str) -> None:
    pattern = SCHEMA["properties"]["operator"]["properties"]["defaultTTL"]["pattern"]
    try:
        parse_duration(text, field="t")
        parses = True
    except ConfigError:
        parses = False
    assert bool(re.search(pattern, text)) == parses


def walk(values: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    for key, value in values.items():
        node = schema.get("properties", {}).get(key)
        assert node is not None, f"{path}{key} is in values.yaml but not in values.schema.json"
        yield f"{path}{key}", value, node
        if isinstance(value, dict) and node.get("additionalProperties") is False:
            yield from walk(value, node, f"{path}{key}.")


def test_every_value_is_typed_and_described() -> None:
    assert SCHEMA["additionalProperties"] is False
    seen = list(walk(VALUES, SCHEMA, ""))
    assert len(seen) > 80
    for path, value, node in seen:
        assert node.get("description"), f"{path} has no description in the schema"
        assert "type" in node, f"{path} has no type in the schema"
        if isinstance(value, dict) and value and node.get("additionalProperties") is not False:
            # Open objects are only the free-form ones: Kubernetes structures and maps of the user's keys.
            assert path in {"resources", "podSecurityContext", "securityContext"} or path.endswith(
                ("annotations", "labels", "Labels", "nodeSelector", "affinity")), f"{path} is open"


def test_the_schema_describes_no_value_that_values_yaml_lacks() -> None:
    def missing(values: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
        for key, node in schema.get("properties", {}).items():
            if key not in values:
                yield f"{path}{key}"
            elif node.get("additionalProperties") is False and isinstance(values[key], dict):
                yield from missing(values[key], node, f"{path}{key}.")

    assert list(missing(VALUES, SCHEMA, "")) == ["global"]
