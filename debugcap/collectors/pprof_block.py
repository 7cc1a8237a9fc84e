"""Block profile: /debug/pprof/block (empty unless the program called runtime.SetBlockProfileRate)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class BlockProfileCollector(base.Collector):
    name = "pprof-block"
    kind = base.Kind.GO
    description = "blocking on channels and locks (/debug/pprof/block)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return fetching.fetch(ctx, self.name, "/debug/pprof/block", layout.PPROF_BLOCK, fetching.Body.PROFILE)
