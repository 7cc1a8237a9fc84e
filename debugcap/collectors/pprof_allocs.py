"""Allocation profile: /debug/pprof/allocs (every allocation since the process started)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class AllocsProfileCollector(base.Collector):
    name = "pprof-allocs"
    kind = base.Kind.GO
    description = "allocations since start (/debug/pprof/allocs)"
    before_window = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return fetching.fetch(ctx, self.name, "/debug/pprof/allocs", layout.PPROF_ALLOCS, fetching.Body.PROFILE)
