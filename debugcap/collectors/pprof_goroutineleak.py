"""Goroutine leak profile: /debug/pprof/goroutineleak, goroutines the garbage collector proved stuck.

Go 1.26 built with ``GOEXPERIMENT=goroutineleakprofile`` (standard from Go 1.27) serves it. Each
request first runs a GC cycle that finds goroutines blocked on channels, mutexes or wait groups
no running goroutine can reach, marks them leaked, then writes the profile
(``runtime/pprof.writeGoroutineLeak``): debug=0 (protobuf) and debug=1 (counts by stack) hold
only the leaked goroutines; debug=2 is every goroutine's stack, the leaked ones shown as
``[chan receive (leaked)]``. Unlike the heuristic leak suspects of a goroutine dump (large groups
parked on one frame), this is proof: nothing can ever wake them.

A program without the experiment answers pprof's "Unknown profile" 404, which tells nothing
about why; so the ``/debug/pprof/`` index is read first (net/http/pprof lists every profile the
runtime has there) and a program that does not list it is skipped with a note, not failed.
"""

from __future__ import annotations

import re

from debugcap.bundle import layout
from debugcap.collectors import base, fetching
from debugcap.kube import portforward

INDEX = "/debug/pprof/"
NOT_SERVED = ("not served by this process (needs Go 1.26 with GOEXPERIMENT=goroutineleakprofile, "
              "or Go 1.27+)")
# net/http/pprof's index links each profile as <a href='goroutineleak?debug=1'>goroutineleak</a>.
_LISTED = re.compile(rb"href=['\"]goroutineleak\?debug=1['\"]|>goroutineleak<")
_INDEX_MAX_BYTES = 1 << 20

FORMATS = {
    "proto": ("/debug/pprof/goroutineleak", layout.PPROF_GOROUTINELEAK, fetching.Body.PROFILE),
    "debug1": ("/debug/pprof/goroutineleak?debug=1", layout.PPROF_GOROUTINELEAK_DEBUG1, fetching.Body.TEXT),
    "debug2": ("/debug/pprof/goroutineleak?debug=2", layout.PPROF_GOROUTINELEAK_DEBUG2, fetching.Body.TEXT),
}


class GoroutineLeakCollector(base.Collector):
    name = "pprof-goroutineleak"
    kind = base.Kind.GO
    description = "goroutines the runtime proved leaked (Go 1.26 goroutineleak profile), when served"
    before_window = True

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        formats = list(ctx.param("formats", ["proto", "debug2"]))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            return base.CollectorResult(base.Status.FAILED, f"unknown formats {unknown}; "
                                        f"choose from {', '.join(FORMATS)}")
        listed = _index_lists_goroutineleak(ctx)
        if listed is not None:
            return listed
        return base.CollectorResult.worst([
            fetching.fetch(ctx, self.name, FORMATS[f][0], FORMATS[f][1], FORMATS[f][2]) for f in formats
        ])


def _index_lists_goroutineleak(ctx: base.CollectContext) -> base.CollectorResult | None:
    """None when the pprof index lists goroutineleak; else the result to return (skipped, or the
    index's own failure)."""
    with ctx.scratch() as (fh, scratch):
        timeout = ctx.settings.http_timeout_seconds
        if ctx.http is not None:
            res = ctx.http.get(INDEX, fh, timeout=timeout, max_bytes=_INDEX_MAX_BYTES)
        else:
            res = portforward.get(ctx.kube, namespace=ctx.target.namespace, pod=ctx.target.pod,
                                  port=ctx.target.pprof_port, path=INDEX, sink=fh, timeout=timeout,
                                  max_bytes=_INDEX_MAX_BYTES)
        body = scratch.read_bytes()
    if res.status == 200 and _LISTED.search(body):
        return None
    if res.status == 200:
        return base.CollectorResult(base.Status.SKIPPED, NOT_SERVED)
    return base.CollectorResult(
        base.Status.SKIPPED, f"{INDEX} answered HTTP {res.status} on port {ctx.target.pprof_port}: net/http/pprof is "
        "not served there, so neither is /debug/pprof/goroutineleak")
