"""Two numbers a DebugTrigger reads from a Go process: its goroutines and the memory it holds.

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
from typing import Final

_TOTAL = re.compile(rb"^goroutine profile: total (\d+)\s*$", re.MULTILINE)
_MEMSTAT = re.compile(rb"^# (Sys|HeapReleased) = (\d+)\s*$", re.MULTILINE)
# The goroutine profile's header is on its first line; a few hundred bytes are plenty.
GOROUTINE_HEAD_BYTES: Final = 4096


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
