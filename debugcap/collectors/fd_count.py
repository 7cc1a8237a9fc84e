"""Number of open file descriptors of the main process (PID 1): the first sign of an fd leak."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


class FdCountCollector(base.Collector):
    name = "fd-count"
    kind = base.Kind.EXEC
    description = "open file descriptor count of PID 1"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return execution.run(ctx, layout.PROC_FD_COUNT, [execution.shell("ls /proc/1/fd | wc -l")])
