"""Heap and goroutine snapshots spaced in time, for leak hunting (compare with `go tool pprof -base`).

One snapshot proves nothing about a leak; growth between snapshots does. Heap
snapshots force a GC (gc=1) so each one measures live memory, not garbage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from debugcap.bundle import layout
from debugcap.collectors import base, fetching

PROFILES = {
    "heap": ("/debug/pprof/heap", "heap.pb.gz", fetching.Body.PROFILE),
    "goroutine": ("/debug/pprof/goroutine?debug=2", "goroutine-debug2.txt", fetching.Body.TEXT),
    "allocs": ("/debug/pprof/allocs", "allocs.pb.gz", fetching.Body.PROFILE),
}


_now, _sleep = time.monotonic, time.sleep  # module attributes: unit tests move a clock of their own


class GoLeakSnapshotsCollector(base.Collector):
    name = "go-leak-snapshots"
    kind = base.Kind.GO
    description = "N heap + goroutine snapshots, T seconds apart"

    @classmethod
    def expected_seconds(cls, params: Mapping[str, Any]) -> float:
        try:
            return (int(params.get("snapshots") or 3) - 1) * float(params.get("interval_seconds") or 60)
        except (TypeError, ValueError):  # collect() reports the bad value; the deadline takes the default
            return 2 * 60.0

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        count = int(ctx.param("snapshots", 3))
        interval = float(ctx.param("interval_seconds", 60))
        kinds = list(ctx.param("profiles", ["heap", "goroutine"]))
        gc = bool(ctx.param("gc", True))
        results: list[base.CollectorResult] = []
        next_at = _now()
        fetched: dict[str, float] = {}  # when each kind was last asked for
        for index in range(count):
            _wait_until(next_at)
            # Interval from this snapshot's start, whichever is later: a late snapshot (a fetch
            # slower than the interval) must not be followed by one at once to catch up; two
            # snapshots 0.15 s apart show no growth and the rates between them mean nothing.
            next_at = max(next_at, _now()) + interval
            for kind in kinds:
                # And each kind at least an interval after its previous fetch: a slow heap
                # fetch (gc=1 on a big heap) must not put two goroutine dumps back to back.
                if kind in fetched:
                    _wait_until(fetched[kind] + interval)
                fetched[kind] = _now()
                url, filename, body = PROFILES[kind]
                if kind == "heap" and gc:
                    url += "?gc=1"
                results.append(fetching.fetch(ctx, self.name, url, layout.snapshot_path(index, filename), body))
        return base.CollectorResult.worst(results)


def _wait_until(when: float) -> None:
    delay = when - _now()
    if delay > 0:
        _sleep(delay)
