"""Settings: S3 from the environment, validation, and the secret never shown."""

from __future__ import annotations

import pytest

from debugcap.errors import ConfigError
from debugcap.settings import CaptureSettings, S3Settings

ENV = {
    "DEBUGCAP_S3_ENDPOINT": "minio.debugcap:9000",
    "DEBUGCAP_S3_BUCKET": "evidence",
    "DEBUGCAP_S3_ACCESS_KEY": "debugcap",
    "DEBUGCAP_S3_SECRET_KEY": "s3cr3t-value-do-not-print",
    "DEBUGCAP_S3_REGION": "eu-west-1",
    "DEBUGCAP_S3_SECURE": "false",
    "DEBUGCAP_S3_PREFIX": "/debug/team-a/",
    "DEBUGCAP_CLUSTER": "prod-eu",
}


def test_from_env_reads_every_variable() -> None:
    s = S3Settings.from_env(ENV)
    assert s is not None
    assert (s.endpoint, s.bucket, s.access_key, s.region, s.secure, s.prefix, s.cluster) == (
        "minio.debugcap:9000", "evidence", "debugcap", "eu-west-1", False, "debug/team-a", "prod-eu",
    )  # fmt: skip
    assert s.secret_key == "s3cr3t-value-do-not-print"


def test_no_endpoint_means_no_s3() -> None:
    assert S3Settings.from_env({}) is None
    assert S3Settings.from_env({"DEBUGCAP_S3_BUCKET": "x"}) is None


def test_defaults_when_only_endpoint_is_set() -> None:
    s = S3Settings.from_env({"DEBUGCAP_S3_ENDPOINT": "minio:9000"})
    assert s is not None and (s.bucket, s.secure, s.prefix, s.cluster, s.access_key) == (
        "debugcap", True, "debugcap", "default", None,
    )  # fmt: skip


def test_secret_key_never_appears_in_repr_or_str() -> None:
    s = S3Settings.from_env(ENV)
    assert "s3cr3t-value-do-not-print" not in repr(s) and "s3cr3t-value-do-not-print" not in str(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUGCAP_S3_SECURE": "maybe"}, "DEBUGCAP_S3_SECURE='maybe' is not a boolean"),
        ({"DEBUGCAP_S3_BUCKET": "Bad_Bucket"}, "bucket name 'Bad_Bucket' is invalid"),
        ({"DEBUGCAP_S3_SECRET_KEY": ""}, "credentials are incomplete"),
        ({"DEBUGCAP_CLUSTER": "a/b"}, "set DEBUGCAP_CLUSTER"),
        ({"DEBUGCAP_S3_PREFIX": "a//b"}, "prefix 'a//b' is invalid"),
    ],
    ids=["secure", "bucket", "half-credentials", "cluster", "prefix"],
)
def test_bad_environment_is_a_config_error_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        S3Settings.from_env({**ENV, **env})


def test_capture_defaults_match_the_documented_limits() -> None:
    c = CaptureSettings()
    assert (c.output_cap_bytes, c.exec_timeout_seconds, c.log_lines, c.pprof_port, c.redact) == (
        64 * 1024 * 1024, 30.0, 1000, 6060, True,
    )  # fmt: skip
