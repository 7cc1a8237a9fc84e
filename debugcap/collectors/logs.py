"""Container logs: the last N lines, and the previous instance's when the container restarted.

A log is bounded by the output cap like every other evidence: the API server is asked for one
byte more than the cap (``limitBytes``), and reading stops at the cap whatever it sends; a log
cut there is kept and partial, naming the cap (issue 16: logs ignored the 64 MiB cap).
"""

from __future__ import annotations

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.kube.client import segment

CHUNK = 256 << 10


class LogsCollector(base.Collector):
    name = "logs"
    kind = base.Kind.KUBERNETES
    description = "container logs (last N lines, and the previous instance's)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        lines = int(ctx.param("lines", ctx.settings.log_lines))
        results = [self._one(ctx, lines, previous=False)]
        if ctx.param("previous", True) and ctx.target.restart_count > 0:
            results.append(self._one(ctx, lines, previous=True))
        return base.CollectorResult.worst(results)

    def _one(self, ctx: base.CollectContext, lines: int, *, previous: bool) -> base.CollectorResult:
        t = ctx.target
        path = layout.log_path(t.container, previous=previous)
        cap = ctx.settings.output_cap_bytes
        try:
            resp = ctx.kube.get(f"/api/v1/namespaces/{segment(t.namespace)}/pods/{segment(t.pod)}/log",
                                [("container", t.container), ("tailLines", str(lines)),
                                 ("previous", str(previous).lower()), ("timestamps", "true"),
                                 ("limitBytes", str(cap + 1))],
                                timeout=ctx.settings.http_timeout_seconds)
        except errors.KubeError as exc:
            which = "previous container's logs" if previous else "logs"
            return base.CollectorResult(base.Status.FAILED, f"{which} of container {t.container}: {exc}")
        written = 0
        try:
            with ctx.scratch() as (fh, scratch):
                for chunk in resp.stream(CHUNK):
                    fh.write(chunk[:cap - written])
                    written += len(chunk)
                    if written > cap:
                        resp.close()  # stop reading: the connection is not reused with a body left in it
                        break
                fh.flush()
                ctx.add(path, scratch)
        finally:
            resp.release_conn()
        if written > cap:
            return base.CollectorResult(base.Status.PARTIAL, f"{path}: cut at {cap} bytes (the output cap)", (path,))
        return base.CollectorResult(base.Status.OK, "", (path,))
