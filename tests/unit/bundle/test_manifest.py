"""Manifest round trip and validation of untrusted manifest JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import debugcap
from debugcap.bundle import manifest
from debugcap.errors import BundleError


@pytest.fixture
def full(make_fields) -> manifest.Manifest:  # type: ignore[no-untyped-def]
    return manifest.Manifest.build(
        make_fields(),
        files={"proc/ps.txt": manifest.FileEntry(sha256="a" * 64, size=10)},
        redactions=(manifest.Redaction(file="env/environment.txt", line=3, redactor="env-secret"),),
        redaction_counts={"env/environment.txt": {"env-secret": 1}},
    )


def test_round_trip_is_exact(full: manifest.Manifest) -> None:
    original = full
    assert manifest.Manifest.from_json(original.to_json()) == original


def test_json_has_documented_fields(full: manifest.Manifest) -> None:
    data = json.loads(full.to_json())
    assert data["format_version"] == 1
    assert data["debugcap_version"] == debugcap.__version__
    assert data["started_at"] == "2026-11-23T16:00:00Z"
    assert data["finished_at"] == "2026-11-23T16:00:42Z"
    assert data["collectors"][0] == {
        "name": "ps",
        "status": "ok",
        "duration_ms": 12,
        "bytes": 10,
        "message": "",
        "files": ["proc/ps.txt"],
    }
    assert data["target"]["node"] == "n1"
    assert data["redactions"] == [{"file": "env/environment.txt", "line": 3, "redactor": "env-secret"}]


def test_times_are_truncated_to_seconds_in_utc(make_fields) -> None:  # type: ignore[no-untyped-def]
    m = manifest.Manifest.build(
        make_fields(started_at=datetime(2026, 1, 1, 0, 0, 0, 999_000, tzinfo=UTC)), files={}
    )
    assert manifest.Manifest.from_json(m.to_json()).started_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=2), "format_version 2"),
        (lambda d: d["collectors"][0].update(status="exploded"), r"collectors\[0\]\.status must be one of"),
        (lambda d: d["files"]["proc/ps.txt"].update(size="big"), "size must be an integer"),
        (lambda d: d.update(started_at="yesterday"), "started_at must be an RFC3339 time"),
        (lambda d: d.pop("target"), "target must be an object"),
    ],
    ids=["future-version", "bad-status", "bad-size", "bad-time", "no-target"],
)
def test_damaged_manifest_names_the_bad_field(full, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(full.to_json())
    mutate(data)
    with pytest.raises(BundleError, match=message):
        manifest.Manifest.from_json(json.dumps(data))


def test_not_json_is_a_bundle_error() -> None:
    with pytest.raises(BundleError, match="not valid JSON"):
        manifest.Manifest.from_json(b"{nope")
