"""The chart's redaction.patterns, rendered by helm.

Cases:
* none by default: no ConfigMap, no DEBUGCAP_OPERATOR_REDACTION_PATTERNS, no volume
* patterns: a ConfigMap <release>-redaction holding patterns.yaml, mounted read-only at
  /etc/debugcap/redaction, the env naming the file, a checksum annotation (a change restarts the
  operator); the file as mounted is what the operator reads back
* existingConfigMap: mounted instead, no ConfigMap rendered
* more than 50 patterns fail to render, naming the value
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from debugcap.operator.config import DebugcapConfig

from .test_chart_namespaces import helm, operator_env, render, run_helm  # noqa: F401  (helm: a fixture)

pytestmark = pytest.mark.slow
ENV = "DEBUGCAP_OPERATOR_REDACTION_PATTERNS"
ACME = ("--set", "redaction.patterns[0].name=acme-token",
        "--set-string", "redaction.patterns[0].regex=acme_[A-Za-z0-9]{32}")


def deployment_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    return dict(deploy["spec"]["template"])


def test_no_patterns_by_default(helm: Path) -> None:  # noqa: F811
    docs = render(helm)
    assert ENV not in operator_env(docs)
    assert not any(d["kind"] == "ConfigMap" for d in docs)
    assert "redaction" not in str(deployment_pod(docs)["spec"]["volumes"])


def test_patterns_become_a_mounted_configmap_the_operator_reads(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    docs = render(helm, *ACME)
    [config_map] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "dc-debugcap-redaction"
    env = operator_env(docs)
    assert env[ENV] == "/etc/debugcap/redaction/patterns.yaml"
    pod = deployment_pod(docs)
    [mount] = [m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "redaction-patterns"]
    assert mount == {"name": "redaction-patterns", "mountPath": "/etc/debugcap/redaction", "readOnly": True}
    assert "checksum/redaction-patterns" in pod["metadata"]["annotations"]
    mounted = tmp_path / "patterns.yaml"
    mounted.write_text(config_map["data"]["patterns.yaml"])
    config = DebugcapConfig.from_env({**env, ENV: str(mounted)})
    assert config.redaction_patterns == (("acme-token", "acme_[A-Za-z0-9]{32}"),)


def test_an_existing_configmap_is_mounted_instead(helm: Path) -> None:  # noqa: F811
    docs = render(helm, *ACME, "--set", "redaction.existingConfigMap=acme-patterns")
    assert not any(d["kind"] == "ConfigMap" for d in docs)
    [volume] = [v for v in deployment_pod(docs)["spec"]["volumes"] if v["name"] == "redaction-patterns"]
    assert volume["configMap"]["name"] == "acme-patterns"
    assert operator_env(docs)[ENV] == "/etc/debugcap/redaction/patterns.yaml"


def test_more_than_fifty_patterns_fail_to_render(helm: Path) -> None:  # noqa: F811
    many = [arg for i in range(51) for arg in ("--set", f"redaction.patterns[{i}].name=p{i}",
                                               "--set", f"redaction.patterns[{i}].regex=tok{i}_x")]
    res = run_helm(helm, *many)
    assert res.returncode != 0 and "redaction.patterns has 51 patterns, more than 50" in res.stderr
