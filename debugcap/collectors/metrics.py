"""Prometheus metrics page (/metrics) when the program serves one on its pprof port.

The page also says what Go runtime serves it, when it carries client_golang's Go collector
(``go_info``, ``go_sched_gomaxprocs_threads``, ``go_gc_gomemlimit_bytes``): those become the
manifest's ``runtime`` facts ``goVersion``, ``GOMAXPROCS`` and ``GOMEMLIMIT``
(:func:`debugcap.formats.prometheus.runtime_facts`), read from the stored page as it goes in.
"""

import dataclasses

from debugcap.bundle import layout
from debugcap.collectors import base, fetching
from debugcap.formats import prometheus


class MetricsCollector(base.Collector):
    name = "metrics"
    kind = base.Kind.GO
    description = "Prometheus /metrics snapshot (and the Go version, GOMAXPROCS, GOMEMLIMIT it shows)"
    before_window = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        path = str(ctx.param("path", "/metrics"))

        def store(bundle_path: str, scratch: base.Scratch) -> None:
            if bundle_path == layout.METRICS_PROMETHEUS:
                for key, value in prometheus.runtime_facts(scratch.reader()).items():
                    ctx.note(key, value)
            ctx.add_file(bundle_path, scratch)

        # The same context (its ``added`` and ``facts`` are shared), noting facts as the page goes in.
        return fetching.fetch(dataclasses.replace(ctx, add_file=store), self.name, path,
                              layout.METRICS_PROMETHEUS, fetching.Body.TEXT, missing_is_skip=True)
