"""Fixtures shared by the bundle tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from debugcap.bundle import manifest

WHEN = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)


@pytest.fixture
def when() -> datetime:
    return WHEN


@pytest.fixture
def make_fields() -> Callable[..., manifest.ManifestFields]:
    def build(**overrides: object) -> manifest.ManifestFields:
        values: dict[str, object] = {
            "capture": manifest.CaptureInfo(
                name="cap-1", template="debug-full", parameters={"cpu_seconds": 30}
            ),
            "target": manifest.TargetInfo(
                namespace="prod", pod="api-1", container="app", node="n1", image="img:1"
            ),
            "started_at": WHEN,
            "finished_at": WHEN.replace(second=42),
            "collectors": (
                manifest.CollectorRecord(
                    name="ps",
                    status=manifest.CollectorStatus.OK,
                    duration_ms=12,
                    bytes=10,
                    files=("proc/ps.txt",),
                ),
            ),
        }
        values.update(overrides)
        return manifest.ManifestFields(**values)  # type: ignore[arg-type]

    return build
