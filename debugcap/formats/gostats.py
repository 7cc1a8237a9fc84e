"""Numbers read from a Go process's own pages: what a DebugTrigger watches (its goroutines and
the memory it holds) and the GC pauses a bundle's report reads (:func:`gc_pauses`).

Pure parsers over what ``net/http/pprof`` and ``expvar`` serve, unit-tested on bytes:

- goroutines: the first line of ``/debug/pprof/goroutine?debug=1``, ``goroutine profile: total N``;
- memory: what the runtime has from the OS and not given back, ``Sys - HeapReleased`` of
  ``runtime.MemStats``: from ``/debug/vars`` (expvar's ``memstats``) when the program imports
  expvar, else from the ``# runtime.MemStats`` tail of ``/debug/pprof/heap?debug=1``, which every
  program serving pprof has. It is the Go side of the container's memory: heap (garbage not yet
  collected included), stacks and the runtime's own; not cgo allocations, other processes or the
  page cache, which the kernel also charges to the container (docs/triggers.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

_TOTAL = re.compile(rb"^goroutine profile: total (\d+)\s*$", re.MULTILINE)
_MEMSTAT = re.compile(rb"^# (Sys|HeapReleased) = (\d+)\s*$", re.MULTILINE)
# The goroutine profile's header is on its first line; a few hundred bytes are plenty.
GOROUTINE_HEAD_BYTES: Final = 4096
# runtime.MemStats.PauseNs is a ring of the last 256 GC cycles' stop-the-world pauses.
PAUSE_RING: Final = 256


def goroutine_total(head: bytes) -> int | None:
    """N of ``goroutine profile: total N`` on the first line of a debug=1 goroutine profile."""
    first = head.split(b"\n", 1)[0]
    m = _TOTAL.match(first)
    return int(m.group(1)) if m else None


def held_from_expvar(body: bytes) -> int | None:
    """``Sys - HeapReleased`` of expvar's ``memstats``; None when the page has no memstats."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stats = doc.get("memstats") if isinstance(doc, dict) else None
    if not isinstance(stats, dict):
        return None
    sys_, released = stats.get("Sys"), stats.get("HeapReleased")
    if not isinstance(sys_, int) or not isinstance(released, int) or not _count(sys_) \
            or not _count(released, zero=True):
        return None
    return sys_ - released


def held_from_heap_text(text: bytes) -> int | None:
    """``Sys - HeapReleased`` from the ``# runtime.MemStats`` tail of ``heap?debug=1``."""
    found = {m.group(1): int(m.group(2)) for m in _MEMSTAT.finditer(text)}
    if b"Sys" not in found or b"HeapReleased" not in found:
        return None
    return found[b"Sys"] - found[b"HeapReleased"]


def _count(value: object, *, zero: bool = False) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if zero else value > 0)


@dataclass(frozen=True)
class GcPauses:
    """The GC's stop-the-world pauses as ``runtime.MemStats`` has them when it was read.

    ``recent_max_ns``: the longest pause of the last ``recent_cycles`` cycles (``PauseNs``, a ring
    of the last 256; 0 when no cycle ran); ``total_ns``: ``PauseTotalNs``, over all ``num_gc``
    cycles since the process started."""

    num_gc: int
    total_ns: int
    recent_max_ns: int
    recent_cycles: int

    def as_dict(self) -> dict[str, int]:
        return {"num_gc": self.num_gc, "total_ns": self.total_ns, "recent_max_ns": self.recent_max_ns,
                "recent_cycles": self.recent_cycles}


def gc_pauses(memstats: Mapping[str, object]) -> GcPauses | None:
    """:class:`GcPauses` of expvar's ``memstats`` object; None when its fields are missing or odd
    (not counts, a ring that is not 256 long): a page that is not the runtime's says nothing."""
    num_gc, total, ring = memstats.get("NumGC"), memstats.get("PauseTotalNs"), memstats.get("PauseNs")
    if not isinstance(num_gc, int) or not _count(num_gc, zero=True) or not isinstance(total, int) \
            or not _count(total, zero=True) or not isinstance(ring, list) or len(ring) != PAUSE_RING \
            or not all(isinstance(v, int) and _count(v, zero=True) for v in ring):
        return None
    # The ring fills from index 0 and wraps: with fewer than 256 cycles only the first NumGC slots
    # were written, with more every slot holds one of the last 256.
    recent = min(num_gc, PAUSE_RING)
    return GcPauses(num_gc=num_gc, total_ns=total, recent_max_ns=max(ring[:recent], default=0),
                    recent_cycles=recent)

