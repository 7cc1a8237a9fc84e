"""Container logs: the last N lines, and the previous instance's when the container restarted.

A log is bounded by the output cap like every other evidence: the API server is asked for one
byte more than the cap (``limitBytes``), and reading stops at the cap whatever it sends; a log
cut there is partial, naming the cap (issue 16: logs ignored the 64 MiB cap). Since the kubelet
cuts from the start of the tail, a cut log is asked for again with as many of the newest lines
as fitted, so what is kept ends at the log's end.
"""

from __future__ import annotations

from typing import IO

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.kube.client import segment

CHUNK = 256 << 10
# Reads asking for fewer of the newest lines after a cut one: a judgement call (each costs at most
# the cap; halving, six reach newest lines 64 times as long as the rest).
NEWEST_RETRIES = 6


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
        with ctx.scratch() as (fh, first):
            got = self._read(ctx, lines, previous, fh)
            if isinstance(got, base.CollectorResult):
                return got
            written, newlines = got
            if written <= cap:
                ctx.add(path, first)
                return base.CollectorResult(base.Status.OK, "", (path,))
            # The kubelet applies limitBytes from the start of the tail, so the cut kept the oldest
            # of the last N lines; the newest matter most. Ask again for as many lines as fitted:
            # those end at the log's end, unless the newest lines are longer (or the log grew), so
            # a read cut again asks for fewer (each read at most the cap, only when cut).
            fitted = min(newlines, lines) - 1
            for _ in range(NEWEST_RETRIES):
                if fitted <= 0:
                    break
                with ctx.scratch() as (fh2, newest):
                    again = self._read(ctx, fitted, previous, fh2)
                    if isinstance(again, base.CollectorResult) or again[1] == 0:
                        break
                    if again[0] <= cap:
                        ctx.add(path, newest)
                        return base.CollectorResult(
                            base.Status.PARTIAL, f"{path}: the newest {fitted} lines only: the last {lines} "
                            f"are more than {cap} bytes (the output cap)", (path,))
                    # Cut again: the newest lines are longer. At most the lines this read kept, and at
                    # most half as many as asked: a few reads reach lines of any length.
                    fitted = min(again[1] - 1, fitted // 2)
            ctx.add(path, first)
        return base.CollectorResult(base.Status.PARTIAL, f"{path}: cut at {cap} bytes (the output cap)", (path,))

    @staticmethod
    def _read(ctx: base.CollectContext, lines: int, previous: bool,
              fh: IO[bytes]) -> tuple[int, int] | base.CollectorResult:
        """The last ``lines`` lines into ``fh``, at most the cap: (bytes sent, newlines kept), or the
        failure. More than the cap sent means the log was cut there."""
        t = ctx.target
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
        written = newlines = 0
        try:
            for chunk in resp.stream(CHUNK):
                kept = chunk[:cap - written]
                fh.write(kept)
                newlines += kept.count(b"\n")
                written += len(chunk)
                if written > cap:
                    resp.close()  # stop reading: the connection is not reused with a body left in it
                    break
            fh.flush()
        finally:
            resp.release_conn()
        return written, newlines
