"""Rule collector-failed: failed and partial collectors are findings; ok and skipped ones are not."""

from __future__ import annotations

from debugcap.bundle import manifest

from .reports import kinds, messages, report


def _record(name: str, status: manifest.CollectorStatus, message: str = "") -> manifest.CollectorRecord:
    return manifest.CollectorRecord(name=name, status=status, duration_ms=1, message=message)


def test_failed_and_partial_collectors_are_findings_with_their_message() -> None:
    S = manifest.CollectorStatus
    rep = report(collectors=(_record("trace", S.FAILED, "tracing already enabled"), _record("pprof-cpu", S.OK),
                             _record("sockets", S.SKIPPED), _record("pprof-heap", S.PARTIAL)))
    assert kinds(rep) == [("collector-failed", "trace"), ("collector-failed", "pprof-heap")]
    assert messages(rep) == ["collector trace failed: tracing already enabled",
                             "collector pprof-heap partial: no message"]
