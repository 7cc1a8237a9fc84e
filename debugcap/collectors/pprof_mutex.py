"""Mutex profile: /debug/pprof/mutex (empty unless the program called runtime.SetMutexProfileFraction)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class MutexProfileCollector(base.Collector):
    name = "pprof-mutex"
    kind = base.Kind.GO
    description = "lock contention (/debug/pprof/mutex)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return fetching.fetch(ctx, self.name, "/debug/pprof/mutex", layout.PPROF_MUTEX, fetching.Body.PROFILE)
