"""expvar: /debug/vars (memstats: HeapInuse, HeapAlloc, NumGC, NextGC, plus the program's own vars)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class ExpvarCollector(base.Collector):
    name = "expvar"
    kind = base.Kind.GO
    description = "expvar and memstats (/debug/vars)"
    before_window = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return fetching.fetch(ctx, self.name, "/debug/vars", layout.METRICS_EXPVAR, fetching.Body.JSON,
                              missing_is_skip=True)
