"""Redaction on lines written apart from the corpus and the detectors (a reviewer's held-out
sample, 2026-12-05): before the two vocabulary words it taught, one secret (sessionid=) survived
and one count (tokens_processed=) was masked. Kept as a regression test; the values are fake."""

from __future__ import annotations

import pytest

from debugcap.bundle import redact

SECRETS = [
    ('level=info msg="connecting" dsn="postgres://app:Xk9pQ2mZ7vLw@db:5432/app"', "Xk9pQ2mZ7vLw"),
    ("auth ok user=bob api_key=ZK3nW8q0xPDm5TfR2yLc", "ZK3nW8q0xPDm5TfR2yLc"),
    ("DATABASE_PASSWORD=s3cr3t-Hunter2", "s3cr3t-Hunter2"),
    ("/usr/bin/app --admin-password=Tr0ub4dor3 --port 8080", "Tr0ub4dor3"),
    ("psql postgresql://report:N0tS0S3cret@pg/reports", "N0tS0S3cret"),
    ('{"user":"x","credentials":{"password":"Pa55w0rd!x"}}', "Pa55w0rd!x"),
    ('{"refresh_token":"rt_9f8e7d6c5b4a39281706"}', "rt_9f8e7d6c5b4a39281706"),
    ("stringData:\n  db-password: hunter2hunter2", "hunter2hunter2"),
    ("x-api-key: 8f14e45fceea167a5a36dedd4bea2543", "8f14e45fceea167a5a36dedd4bea2543"),
    ("mongodb+srv://admin:M0ng0P4ss@cluster0.example.net/db", "M0ng0P4ss"),
    ("session cookie sessionid=7d1a9b3c5e7f9a1b3c5d7e9f1a3b5c7d", "7d1a9b3c5e7f9a1b3c5d7e9f1a3b5c7d"),
]
HARMLESS = [
    "tokens_processed=1200 elapsed=3s", "password_min_length=12", "secret_rotation_days=30", "GOMAXPROCS=2",
    "api_key_header=X-Api-Key", "auth_enabled=true", "keycloak_realm=prod", "token_bucket_size=100",
    "MAX_KEYS=500", "passthrough=true", "key_count=42", "secretsmanager_region=eu-west-1",
    "goroutine 42 [chan receive, 3 minutes]:", 'level=info msg="password changed" user=bob',
]


def _redacted(text: str) -> str:
    report = redact.RedactionReport()
    return b"".join(redact.redact_stream([text.encode() + b"\n"], "f.txt", report)).decode()


@pytest.mark.parametrize(("line", "secret"), SECRETS)
def test_a_held_out_secret_is_masked(line: str, secret: str) -> None:
    assert secret not in _redacted(line)


@pytest.mark.parametrize("line", HARMLESS)
def test_a_held_out_look_alike_is_kept(line: str) -> None:
    assert _redacted(line) == line + "\n"
