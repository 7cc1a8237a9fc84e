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
import threading
import time
from typing import IO

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


# Go runs one CPU profile and one execution trace at a time per process, and refuses a second
# ("cpu profiling already in use", "execution tracer already enabled"). The one running may be a
# capture of this pod that just ended at its deadline (its request ends once Go sees the
# connection closed, within about a second), or a continuous profiler's periodic scrape; so a busy
# answer is asked again for a few seconds before it counts as a failure. Judgement calls.
BUSY_RETRY_SECONDS = 5.0
BUSY_POLL_SECONDS = 0.25
_BUSY = re.compile(rb"already in use|already enabled")
_now, _sleep = time.monotonic, time.sleep  # module attributes: unit tests move a clock of their own

# A fetched profile is checked by decompressing and parsing it in memory: at most this much of
# it decompressed (a pod's 1 MB gzip bomb inflates to gigabytes; real profiles are a few MB). One
# larger is stored unchecked and the result is partial, naming this limit. Parsing costs about 12x
# the decompressed size (23 MiB took 279 MiB, measured): 16 MiB keeps one check near 200 MiB in
# an operator limited to 384 MiB (large parses run one at a time: formats.pprof).
CHECK_MAX_UNCOMPRESSED_BYTES = 16 << 20
# Profiles checked at once in this process: a capture fetches up to seven at a time, and the
# operator runs several captures; the check is CPU-bound under the GIL anyway, so two at a time
# costs no time and bounds the memory to two profiles (their bytes and parsed message).
_CHECKS = threading.BoundedSemaphore(2)


def fetch(ctx: CollectContext, collector: str, url_path: str, bundle_path: str, body: Body, *,
          seconds: float = 0, missing_is_skip: bool = False) -> CollectorResult:
    """GET ``url_path`` from the pod's pprof port into ``bundle_path`` and check what came back."""
    give_up = _now() + (BUSY_RETRY_SECONDS if seconds else 0.0)
    while True:
        with ctx.scratch() as (fh, scratch):
            res = _get(ctx, url_path, fh, seconds)
            if not (res.status == 500 and _now() < give_up and _BUSY.search(scratch.read_bytes(512))):
                return _judge(ctx, collector, url_path, bundle_path, body, res, scratch, missing_is_skip)
        _sleep(BUSY_POLL_SECONDS)


def _get(ctx: CollectContext, url_path: str, fh: IO[bytes], seconds: float) -> portforward.HttpResult:
    timeout = ctx.settings.http_timeout_seconds + seconds + (ctx.settings.profile_grace_seconds if seconds else 0)
    if ctx.http is not None:
        res = ctx.http.get(url_path, fh, timeout=timeout, max_bytes=ctx.settings.output_cap_bytes)
    else:
        res = portforward.get(ctx.kube, namespace=ctx.target.namespace, pod=ctx.target.pod,
                              port=ctx.target.pprof_port, path=url_path, sink=fh, timeout=timeout,
                              max_bytes=ctx.settings.output_cap_bytes)
    fh.flush()
    return res


def _judge(ctx: CollectContext, collector: str, url_path: str, bundle_path: str, body: Body,
           res: portforward.HttpResult, scratch: Scratch, missing_is_skip: bool) -> CollectorResult:
    """What one answer to ``url_path`` is worth: stored evidence, or a failure with its body kept."""
    port = ctx.target.pprof_port
    if res.status == 404 and missing_is_skip:
        return CollectorResult(Status.SKIPPED, f"the pod serves no {url_path.split('?')[0]} on port {port}")
    if res.status != 200 or res.headers.get("x-go-pprof") == "1":
        return _error_body(ctx, collector, url_path, res.status, scratch)
    problem = "" if res.truncated else _check(scratch, body, bundle_path)  # a cut one is known bad
    ctx.add(bundle_path, scratch)
    if res.truncated:  # first: a cut profile is also an invalid one, and the cap is the cause to name
        return CollectorResult(Status.PARTIAL, f"{url_path}: cut at {ctx.settings.output_cap_bytes} bytes",
                               (bundle_path,))
    if problem:
        return CollectorResult(Status.PARTIAL, f"{url_path}: {problem}", (bundle_path,))
    return CollectorResult(Status.OK, "", (bundle_path,))


def _error_body(ctx: CollectContext, collector: str, url_path: str, status: int,
                scratch: Scratch) -> CollectorResult:
    text = scratch.read_bytes(4096).decode(errors="replace").strip()
    # One file per failed endpoint or snapshot: a collector may fail more than one.
    nth = 1
    while layout.error_path(collector, nth) in ctx.added:
        nth += 1
    ctx.add(layout.error_path(collector, nth), scratch)
    hint = ""
    if status == 404 and "/debug/pprof" in url_path:
        hint = (f'; the program does not serve {url_path.split("?")[0]} on port {ctx.target.pprof_port} '
                '(import _ "net/http/pprof", or set the port with the debugcap.io/pprof-port annotation)')
    return CollectorResult(Status.FAILED, f"{url_path} answered HTTP {status}: {errors.shorten(text)}{hint}",
                           (layout.error_path(collector, nth),))


def _check(scratch: Scratch, body: Body, bundle_path: str) -> str:
    if body is Body.TEXT:
        # Asked for no encoding; a pod that sends gzip anyway (with Content-Encoding or without)
        # is not decompressed here: it may be a bomb, and a reader needs the text.
        if scratch.read_bytes(2) == b"\x1f\x8b":
            return ("gzip-compressed bytes where text was asked for: stored as they came, not decompressed "
                    "(a program or proxy compressing its answers, or a decompression bomb)")
        return ""
    if body is Body.PROFILE:
        with _CHECKS:
            try:
                pprof.read(scratch.reader(), bundle_path, CHECK_MAX_UNCOMPRESSED_BYTES)
            except pprof.TooLarge as exc:
                return (f"stored unchecked: {exc}; read it on your machine with kubectl debugcap top or report "
                        "(a huge profile, or a decompression bomb)")
            except errors.AnalysisError as exc:
                return f"not a valid profile: {exc}"
        return ""
    data = scratch.read_bytes(16 if body is Body.TRACE else -1)
    if body is Body.TRACE:
        if not TRACE_HEADER.match(data[:16]):
            return "not a Go execution trace (no 'go 1.NN trace' header)"
    elif body is Body.JSON:
        try:
            json.loads(data)
        except ValueError as exc:
            return f"not valid JSON: {exc}"
    return ""
