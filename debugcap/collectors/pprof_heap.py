"""Heap profile: /debug/pprof/heap (gc=1 forces a collection first, so in-use means live)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class HeapProfileCollector(base.Collector):
    name = "pprof-heap"
    kind = base.Kind.GO
    description = "heap profile (/debug/pprof/heap, optionally after a GC)"
    before_window = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        query = "?gc=1" if ctx.param("gc", False) else ""
        return fetching.fetch(ctx, self.name, f"/debug/pprof/heap{query}", layout.PPROF_HEAP, fetching.Body.PROFILE)
