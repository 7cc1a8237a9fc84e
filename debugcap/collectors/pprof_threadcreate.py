"""Thread creation profile: /debug/pprof/threadcreate (where OS threads were started)."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class ThreadcreateProfileCollector(base.Collector):
    name = "pprof-threadcreate"
    kind = base.Kind.GO
    description = "OS thread creation (/debug/pprof/threadcreate)"
    before_window = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return fetching.fetch(ctx, self.name, "/debug/pprof/threadcreate", layout.PPROF_THREADCREATE,
                              fetching.Body.PROFILE)
