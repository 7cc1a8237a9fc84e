"""/proc/1/status (memory, threads, signals) and /proc/1/limits (fd and memory limits)."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


class ProcStatusCollector(base.Collector):
    name = "proc-status"
    kind = base.Kind.EXEC
    description = "/proc/1/status and /proc/1/limits"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return base.CollectorResult.worst([
            execution.run(ctx, layout.PROC_STATUS, [["cat", "/proc/1/status"]]),
            execution.run(ctx, layout.PROC_LIMITS, [["cat", "/proc/1/limits"]]),
        ])
