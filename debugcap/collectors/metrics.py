"""Prometheus metrics page (/metrics) when the program serves one on its pprof port."""

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class MetricsCollector(base.Collector):
    name = "metrics"
    kind = base.Kind.GO
    description = "Prometheus /metrics snapshot"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        path = str(ctx.param("path", "/metrics"))
        return fetching.fetch(ctx, self.name, path, layout.METRICS_PROMETHEUS, fetching.Body.TEXT,
                              missing_is_skip=True)
