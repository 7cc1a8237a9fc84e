"""CPU profile: /debug/pprof/profile?seconds=N (Go allows one at a time per process)."""

from collections.abc import Mapping
from typing import Any

from debugcap.bundle import layout
from debugcap.collectors import base, fetching


class CpuProfileCollector(base.Collector):
    name = "pprof-cpu"
    kind = base.Kind.GO
    description = "CPU profile over N seconds (/debug/pprof/profile)"
    windowed = True

    @classmethod
    def expected_seconds(cls, params: Mapping[str, Any]) -> float:
        return float(params.get("seconds") or 30)

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        seconds = int(ctx.param("seconds", 30))
        return fetching.fetch(ctx, self.name, f"/debug/pprof/profile?seconds={seconds}", layout.PPROF_CPU,
                              fetching.Body.PROFILE, seconds=seconds)
