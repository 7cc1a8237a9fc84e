"""The pod object before it is stored: secret env values masked, bookkeeping dropped.

Cases: managedFields and the last-applied annotation (which repeats every env value) are
dropped, other annotations kept; env values outside the allowlist are masked in containers,
init containers and ephemeral containers; allowlisted values stay unless they look secret
(a credentialed URL, a token shape); valueFrom references (Secret names only) are untouched;
a pod without spec or metadata does not break.
"""

from __future__ import annotations

from typing import Any

from debugcap.collectors import pod_yaml

MASK = pod_yaml.MASK


def _pod() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "api-1",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"env":[{"name":"DB_PASSWORD","value":"s3cr"}]}',
                "debugcap.io/pprof-port": "6060",
            },
        },
        "spec": {
            "initContainers": [{"name": "init", "env": [{"name": "MIGRATION_TOKEN", "value": "init-tok"}]}],
            "containers": [
                {
                    "name": "app",
                    "env": [
                        {"name": "APP_MODE", "value": "prod"},
                        {"name": "GOMAXPROCS", "value": "2"},
                        {"name": "APP_DB_PASSWORD", "value": "hunter2"},
                        {"name": "APP_DATABASE_URL", "value": "postgres://user:pa55@db/app"},
                        {"name": "DATABASE_URL", "value": "postgres://db/app"},
                        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                    ],
                }
            ],
            "ephemeralContainers": [{"name": "debug", "env": [{"name": "X", "value": "y"}]}],
        },
    }


def _env(pod: dict[str, Any], group: str = "containers") -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"][group][0]["env"]}


def test_managed_fields_and_last_applied_annotation_are_dropped() -> None:
    meta = pod_yaml.sanitize(_pod())["metadata"]
    assert "managedFields" not in meta
    assert meta["annotations"] == {"debugcap.io/pprof-port": "6060"}


def test_env_values_outside_the_allowlist_are_masked() -> None:
    env = _env(pod_yaml.sanitize(_pod()))
    assert env["DATABASE_URL"] == MASK


def test_allowlisted_values_stay_unless_they_look_secret() -> None:
    env = _env(pod_yaml.sanitize(_pod()))
    assert env["APP_MODE"] == "prod"
    assert env["GOMAXPROCS"] == "2"
    assert env["APP_DATABASE_URL"] == MASK  # credentials in the URL


def test_init_and_ephemeral_containers_are_masked_too() -> None:
    pod = pod_yaml.sanitize(_pod())
    assert _env(pod, "initContainers") == {"MIGRATION_TOKEN": MASK}
    assert _env(pod, "ephemeralContainers") == {"X": MASK}


def test_secret_references_are_left_as_names() -> None:
    env = _env(pod_yaml.sanitize(_pod()))
    assert env["FROM_SECRET"] == {"secretKeyRef": {"name": "db", "key": "pw"}}


def test_no_planted_value_survives_anywhere() -> None:
    text = repr(pod_yaml.sanitize(_pod()))
    for secret in ("s3cr", "init-tok", "pa55", "postgres://db/app"):
        assert secret not in text


def test_pod_without_spec_or_metadata_is_returned_unchanged() -> None:
    assert pod_yaml.sanitize({}) == {}
    assert pod_yaml.sanitize({"metadata": {"name": "x"}}) == {"metadata": {"name": "x"}}
