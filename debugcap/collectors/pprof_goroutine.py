"""Goroutine dump: profile (debug=0), counts by stack (debug=1), full stacks with states (debug=2)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching

FORMATS = {
    "proto": ("/debug/pprof/goroutine", layout.PPROF_GOROUTINE, fetching.Body.PROFILE),
    "debug1": ("/debug/pprof/goroutine?debug=1", layout.PPROF_GOROUTINE_DEBUG1, fetching.Body.TEXT),
    "debug2": ("/debug/pprof/goroutine?debug=2", layout.PPROF_GOROUTINE_DEBUG2, fetching.Body.TEXT),
}


class GoroutinesCollector(base.Collector):
    name = "pprof-goroutine"
    kind = base.Kind.GO
    description = "goroutine dump (profile, debug=1 counts, debug=2 full stacks)"
    before_window = True
    windowed = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        formats = list(ctx.param("formats", ["proto", "debug2"]))
        return base.CollectorResult.worst([
            fetching.fetch(ctx, self.name, FORMATS[f][0], FORMATS[f][1], FORMATS[f][2]) for f in formats
        ])
