"""What a capture ends with: its records, its bundle and its phase.

Built by :mod:`debugcap.capture.run`; front ends read it through :mod:`debugcap.capture`
(the operator also folds each pod's records into a phase with :func:`phase_of`).
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from debugcap.bundle import manifest, writer
from debugcap.collectors import base


class Phase(enum.StrEnum):
    COMPLETED = "Completed"  # every collector ok or skipped
    PARTIALLY_FAILED = "PartiallyFailed"  # some failed, something useful was collected
    FAILED = "Failed"  # nothing useful was collected


def _ended() -> threading.Event:
    ended = threading.Event()
    ended.set()
    return ended


@dataclass(frozen=True)
class CaptureOutcome:
    target: base.Target
    bundle: writer.WrittenBundle
    records: tuple[manifest.CollectorRecord, ...]
    phase: Phase
    # Set once no step is running any more. Only a capture cut at its deadline returns before:
    # a caller that reuses the pod's connections or lock closes them first, then waits on this.
    steps_ended: threading.Event = dataclasses.field(default_factory=_ended)


def phase_of(records: Sequence[manifest.CollectorRecord]) -> Phase:
    useful = any(r.status in (manifest.CollectorStatus.OK, manifest.CollectorStatus.PARTIAL) for r in records)
    # A partial collector (a command timed out, output was cut) lost evidence too: not Completed.
    failed = any(r.status in (manifest.CollectorStatus.FAILED, manifest.CollectorStatus.PARTIAL) for r in records)
    if not useful:
        return Phase.FAILED
    return Phase.PARTIALLY_FAILED if failed else Phase.COMPLETED
