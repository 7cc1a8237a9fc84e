"""Process list of the container (`ps aux`, or busybox `ps`)."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


class PsCollector(base.Collector):
    name = "ps"
    kind = base.Kind.EXEC
    description = "process list (ps aux, or busybox ps)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return execution.run(ctx, layout.PROC_PS, [["ps", "aux"], ["ps", "-ef"], ["ps"]])
