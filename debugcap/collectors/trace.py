"""Execution trace: /debug/pprof/trace?seconds=N (scheduling, blocking, GC: what CPU profiles miss)."""

from collections.abc import Mapping
from typing import Any

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class TraceCollector(base.Collector):
    name = "trace"
    kind = base.Kind.GO
    description = "execution trace over N seconds (/debug/pprof/trace)"
    windowed = True

    @classmethod
    def expected_seconds(cls, params: Mapping[str, Any]) -> float:
        return float(params.get("seconds") or 5)

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        seconds = int(ctx.param("seconds", 5))
        return fetching.fetch(ctx, self.name, f"/debug/pprof/trace?seconds={seconds}", layout.TRACE,
                              fetching.Body.TRACE, seconds=seconds)
