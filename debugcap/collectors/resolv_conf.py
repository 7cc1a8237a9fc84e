"""The container's DNS configuration (/etc/resolv.conf)."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


class ResolvConfCollector(base.Collector):
    name = "resolv-conf"
    kind = base.Kind.EXEC
    description = "/etc/resolv.conf"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        # A debug container has its own root: the target's file is under /proc/1/root.
        root = "/proc/1/root" if execution.in_debug_container(ctx) else ""
        return execution.run(ctx, layout.NET_RESOLV_CONF, [["cat", f"{root}/etc/resolv.conf"]])
