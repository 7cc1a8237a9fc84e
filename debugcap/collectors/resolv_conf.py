"""The container's DNS configuration (/etc/resolv.conf)."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


class ResolvConfCollector(base.Collector):
    name = "resolv-conf"
    kind = base.Kind.EXEC
    description = "/etc/resolv.conf"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return execution.run(ctx, layout.NET_RESOLV_CONF, [["cat", "/etc/resolv.conf"]])
