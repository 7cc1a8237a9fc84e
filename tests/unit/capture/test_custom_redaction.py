"""The capture engine applies admin redaction patterns: the settings' (the operator's setting,
``create --local --patterns``) and the template's own, recorded as custom:<name>; a bad one stops
the capture before anything is written (its callers refused it earlier with their own words)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from debugcap import capture
from debugcap.collectors import base
from debugcap.errors import ConfigError
from debugcap.settings import CaptureSettings

from .conftest import STARTED, TARGET, FakeClock, FakeForwards, NoKube, manifest_of, members, stand_in, step, template

TENANT = "acme_" + "T3nq" * 8
SESSION = "acmetenant=" + "9f" * 20
TEMPLATE_PATTERNS = (("acme-token", "acme_[A-Za-z0-9]{32}"),)
SETTING_PATTERNS = (("acme-tenant", "acmetenant=(?P<secret>[0-9a-f]{40})"),)


def run(tmp_path: Path, registry: dict[str, type[base.Collector]], settings: CaptureSettings,
        patterns: tuple[tuple[str, str], ...]) -> capture.CaptureOutcome:
    stand_in(registry, "logs", lambda ctx: (ctx.add_bytes("logs/app.log", f"login {TENANT}\n{SESSION} ok\n".encode()),
                                            base.CollectorResult(base.Status.OK))[1])
    expanded = dataclasses.replace(template(step("logs")), redaction_patterns=patterns)
    return capture.capture(NoKube(), TARGET, expanded, out_dir=tmp_path, capture_name="cap-1",  # type: ignore[arg-type]
                           settings=settings, progress=lambda *_: None, http=FakeForwards(), started=STARTED,
                           collectors=registry, clock=FakeClock())


def test_the_settings_and_the_templates_patterns_are_masked_and_recorded(
        tmp_path: Path, registry: dict[str, type[base.Collector]]) -> None:
    settings = CaptureSettings(durable_bundles=False, redaction_patterns=SETTING_PATTERNS)
    outcome = run(tmp_path, registry, settings, TEMPLATE_PATTERNS)
    log = members(outcome.bundle.path)["logs/app.log"]
    assert log == b"login ***REDACTED***\nacmetenant=***REDACTED*** ok\n"
    kinds = [(r["line"], r["redactor"]) for r in manifest_of(outcome.bundle.path)["redactions"]]
    assert kinds == [(1, "custom:acme-token"), (2, "custom:acme-tenant")]


def test_without_redaction_the_patterns_are_not_applied(tmp_path: Path,
                                                        registry: dict[str, type[base.Collector]]) -> None:
    outcome = run(tmp_path, registry, CaptureSettings(durable_bundles=False, redact=False), TEMPLATE_PATTERNS)
    assert TENANT.encode() in members(outcome.bundle.path)["logs/app.log"]


def test_a_bad_pattern_stops_the_capture_before_a_bundle_is_written(
        tmp_path: Path, registry: dict[str, type[base.Collector]]) -> None:
    with pytest.raises(ConfigError, match='template "stand-in".*"bad".*not valid RE2'):
        run(tmp_path, registry, CaptureSettings(durable_bundles=False), (("bad", "acme_(?=x)"),))
    assert list(tmp_path.iterdir()) == []


def test_collector_messages_get_the_patterns_in_the_manifest_the_records_and_progress(
        tmp_path: Path, registry: dict[str, type[base.Collector]]) -> None:
    # A pod's error body quoted in a collector's message: the built-in detectors do not know the
    # company's token; the records are what the operator writes to status, conditions and Events.
    stand_in(registry, "logs", lambda ctx: base.CollectorResult(base.Status.FAILED, f"HTTP 500: bad token {TENANT}"))
    said: list[str] = []
    expanded = dataclasses.replace(template(step("logs")), redaction_patterns=TEMPLATE_PATTERNS,
                                   parameters={"note": f"for {TENANT}"})
    outcome = capture.capture(NoKube(), TARGET, expanded, out_dir=tmp_path, capture_name="cap-1",  # type: ignore[arg-type]
                              settings=CaptureSettings(durable_bundles=False), http=FakeForwards(), started=STARTED,
                              progress=lambda _name, record: said.append(record.message if record else ""),
                              collectors=registry, clock=FakeClock())
    assert [r.message for r in outcome.records] == ["HTTP 500: bad token ***REDACTED***"]
    document = manifest_of(outcome.bundle.path)
    assert TENANT not in str(document) and document["collectors"][0]["message"] == "HTTP 500: bad token ***REDACTED***"
    assert all(TENANT not in m for m in said) and "HTTP 500: bad token ***REDACTED***" in said
