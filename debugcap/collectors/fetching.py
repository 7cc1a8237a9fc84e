"""Fetching the Go runtime's HTTP endpoints (pprof, trace, expvar, metrics) for Go collectors.

Every response is checked before it is trusted: the HTTP status, pprof's own
error bodies (``X-Go-Pprof: 1``, e.g. "cpu profiling already in use", kept
verbatim under ``errors/``), and the content itself: gzip + protobuf for
profiles, the ``go 1.NN trace`` header for traces, JSON for expvar.
"""

from __future__ import annotations

import enum
import json
import re

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors.base import CollectContext, CollectorResult, Scratch, Status
from debugcap.formats import pprof
from debugcap.kube import portforward

TRACE_HEADER = re.compile(rb"^go 1\.(\d{1,2}) trace\x00+")


class Body(enum.Enum):
    PROFILE = "profile"
    TRACE = "trace"
    JSON = "json"
    TEXT = "text"


def fetch(ctx: CollectContext, collector: str, url_path: str, bundle_path: str, body: Body, *,
          seconds: float = 0, missing_is_skip: bool = False) -> CollectorResult:
    """GET ``url_path`` from the pod's pprof port into ``bundle_path`` and check what came back."""
    timeout = ctx.settings.http_timeout_seconds + seconds + (ctx.settings.profile_grace_seconds if seconds else 0)
    port = ctx.target.pprof_port
    with ctx.scratch() as (fh, scratch):
        if ctx.http is not None:
            res = ctx.http.get(url_path, fh, timeout=timeout, max_bytes=ctx.settings.output_cap_bytes)
        else:
            res = portforward.get(ctx.kube, namespace=ctx.target.namespace, pod=ctx.target.pod, port=port,
                                  path=url_path, sink=fh, timeout=timeout, max_bytes=ctx.settings.output_cap_bytes)
        fh.flush()
        if res.status == 404 and missing_is_skip:
            return CollectorResult(Status.SKIPPED, f"the pod serves no {url_path.split('?')[0]} on port {port}")
        if res.status != 200 or res.headers.get("x-go-pprof") == "1":
            return _error_body(ctx, collector, url_path, res.status, scratch)
        problem = _check(scratch, body, bundle_path)
        ctx.add(bundle_path, scratch)
        if problem:
            return CollectorResult(Status.PARTIAL, f"{url_path}: {problem}", (bundle_path,))
        if res.truncated:
            return CollectorResult(Status.PARTIAL, f"{url_path}: cut at {ctx.settings.output_cap_bytes} bytes",
                                   (bundle_path,))
        return CollectorResult(Status.OK, "", (bundle_path,))


def _error_body(ctx: CollectContext, collector: str, url_path: str, status: int,
                scratch: Scratch) -> CollectorResult:
    text = scratch.read_bytes(4096).decode(errors="replace").strip()
    ctx.add(layout.error_path(collector), scratch)
    hint = ""
    if status == 404 and "/debug/pprof" in url_path:
        hint = (f'; the program does not serve {url_path.split("?")[0]} on port {ctx.target.pprof_port} '
                '(import _ "net/http/pprof", or set the port with the debugcap.io/pprof-port annotation)')
    return CollectorResult(Status.FAILED, f"{url_path} answered HTTP {status}: {errors.shorten(text)}{hint}",
                           (layout.error_path(collector),))


def _check(scratch: Scratch, body: Body, bundle_path: str) -> str:
    if body is Body.TEXT:
        return ""
    data = scratch.read_bytes(16 if body is Body.TRACE else -1)
    if body is Body.PROFILE:
        try:
            pprof.parse(data, bundle_path)
        except errors.AnalysisError as exc:
            return f"not a valid profile: {exc}"
    elif body is Body.TRACE:
        if not TRACE_HEADER.match(data[:16]):
            return "not a Go execution trace (no 'go 1.NN trace' header)"
    elif body is Body.JSON:
        try:
            json.loads(data)
        except ValueError as exc:
            return f"not valid JSON: {exc}"
    return ""
