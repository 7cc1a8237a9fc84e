"""Turn one bundle into a report (what was collected, what it shows), or two into a diff.

Callers: the ``report`` and ``diff`` commands of
:mod:`debugcap.kubectl_plugin.commands.analyze`, which render the results with
:mod:`debugcap.analysis.rendering`. Bundles are read only through
:mod:`debugcap.bundle.layout` (paths) and :mod:`debugcap.bundle.manifest`.

Every input file may be missing or broken. A missing file is listed under
``missing``, a broken one under ``problems``; neither stops the report.
"""

from __future__ import annotations

import dataclasses
import os

from debugcap import errors
from debugcap.analysis import appcode, attribution, findings, flames, goroutines, model, pprof, sections, traces
from debugcap.analysis.bundle_reading import BundleReader, Reading
from debugcap.bundle import layout
from debugcap.formats import pprof as pprof_format


def build(path: str | os.PathLike[str], *, flame_graphs: list[flames.Flame] | None = None,
          profiles: dict[str, pprof_format.Profile] | None = None, force: bool = False,
          trace_limit: int | None = None, profile_limit: int | None = None) -> model.Report:
    """The report for one bundle (packed or unpacked), findings included.

    ``flame_graphs``/``profiles``, when given, are filled with flame graphs and
    parsed profiles (by endpoint name), so the HTML and speedscope outputs reuse
    this one parse instead of reading the bundle again. ``force`` reads what is
    readable of a bundle that fails its checks (:class:`BundleReader`). ``trace_limit``: the
    largest execution trace summarised, in bytes (None: :data:`traces.REPORT_TRACE_LIMIT`); a
    larger one gets a hint naming the trace command. ``profile_limit``: the most a profile is
    decompressed to (None: the format's own); a larger one is a problem line.
    """
    with BundleReader(path, force=force) as reader:
        reading = Reading(reader) if profile_limit is None else Reading(reader, profile_limit)
        rep, profs = _read(reading, trace_limit)
        if profiles is not None:
            profiles.update(profs)
        if flame_graphs is not None:
            flame_graphs.extend(_flames(reading, profs))
        # Flame problems are found after the report is read; they belong in it all the same.
        rep = dataclasses.replace(rep, problems=tuple(reading.problems))
    return dataclasses.replace(rep, findings=findings.evaluate(rep))


def _profiles(reading: Reading, cpu_seconds: float | None) -> dict[str, pprof_format.Profile]:
    profs = {}
    for kind, rel in layout.PPROF_PROFILES.items():
        if reading.reader.exists(rel):
            prof = reading.profile(rel, kind, cpu_seconds if kind == "cpu" else None)
            if prof is not None:
                profs[kind] = prof
    return profs


def _top(reading: Reading, prof: pprof_format.Profile | None, index: str | None = None) -> pprof.TopReport | None:
    if prof is None:
        return None
    r = reading.guard(lambda: pprof.top(prof, index, pprof.PPROF_NODE_FRACTION))
    return sections.limited(r) if r else None


def _attribution(reading: Reading, profs: dict[str, pprof_format.Profile],
                 code: appcode.Code) -> dict[str, model.Attribution]:
    out: dict[str, model.Attribution] = {}
    for kind in ("cpu", "heap", "block", "mutex"):
        if kind in profs:
            att = reading.guard(lambda kind=kind: attribution.attribute(  # type: ignore[misc]
                profs[kind], code, "inuse_space" if kind == "heap" else None))
            if att is not None:
                out[kind] = att
    return out


def _read(reading: Reading, trace_limit: int | None = None) -> tuple[model.Report, dict[str, pprof_format.Profile]]:
    reader = reading.reader
    mf = reading.manifest()
    collectors = mf.collectors if mf else ()
    cpu_seconds = mf.capture.parameters.get("cpu_seconds") if mf else None
    missing = sections.missing(reading, collectors)
    error_texts = sections.error_texts(reading)
    profs = _profiles(reading, cpu_seconds if isinstance(cpu_seconds, int | float) else None)
    tops = {kind: _top(reading, profs.get(kind), "inuse_space" if kind == "heap" else None)
            for kind in ("cpu", "heap", "block", "mutex")}
    # The debug=2 dump has states and wait times; a bundle with only the debug=1 one (a template
    # asking for that format alone) still gets its goroutine section from it.
    dump_rel = next((rel for rel in (layout.PPROF_GOROUTINE_DEBUG2, layout.PPROF_GOROUTINE_DEBUG1)
                     if reader.exists(rel)), layout.PPROF_GOROUTINE_DEBUG2)
    parsed = reading.dump(dump_rel) if reader.exists(dump_rel) else None
    # One notion of the application's own code for every profile of the bundle.
    code = attribution.code_of(profs.values()) if profs else None
    snaps, newest = sections.snapshots(reading, code)
    if parsed is None and newest is not None:
        dump_rel, parsed = newest
    dump = parsed.summary if parsed else None  # parsed once: its groups, and its stacks for ``waiting``
    trace = traces.bundle_summary(reading, trace_limit)  # before hints and problems are taken: it adds to them
    mem = sections.expvar_memstats(reading)  # likewise
    rep = model.Report(
        bundle=str(reader.path), target=mf.target if mf else None, capture=mf.capture if mf else None,
        runtime=mf.runtime if mf else {}, proven_leaks=sections.proven_leaks(reading, profs.get("goroutineleak"), code),
        collectors=collectors, missing=missing, errors=error_texts,
        cpu=tops["cpu"], heap=tops["heap"], block=tops["block"], mutex=tops["mutex"], snapshots=snaps,
        goroutines=None if dump is None else sections.goroutine_section(dump_rel, dump),
        leak_suspects=tuple(goroutines.suspects(dump)) if dump else (),
        sockets=sections.sockets(reading), fd_count=sections.fd_count(reading),
        fd_limit=sections.fd_limit(reading), disk=sections.disk(reading), memstats=sections.memstats(mem),
        gc_pauses=sections.gc_pauses(mem),
        hints=tuple(reading.hints), problems=tuple(reading.problems), notes=tuple(reading.notes),
        attribution=_attribution(reading, profs, code) if code else {},
        waiting=sections.waiting(parsed, code) if parsed else (),
        container=sections.container(reading, mf.target.container, mf.started_at) if mf else None,
        trace=trace)
    return rep, profs


def _flames(reading: Reading, profs: dict[str, pprof_format.Profile]) -> list[flames.Flame]:
    out = []
    for kind in layout.PPROF_PROFILES:
        # threadcreate stacks are all the same few runtime frames: a flame graph of them says nothing.
        if kind in profs and kind != "threadcreate":
            fl = reading.guard(lambda kind=kind: flames.profile_flame(profs[kind], kind))  # type: ignore[misc]
            if fl is not None:
                out.append(fl)
    indices = layout.snapshot_indices(reading.reader.names())
    if len(indices) < 2:
        return out
    first, last = layout.snapshot_dir(indices[0]), layout.snapshot_dir(indices[-1])

    def heap(index: int, label: str) -> pprof_format.Profile | None:
        rel = layout.snapshot_path(index, layout.SNAPSHOT_HEAP)
        return reading.guard(lambda: pprof_format.parse(reading.reader.read(rel) or b"", label))

    a, b = heap(indices[0], first), heap(indices[-1], last)
    if a is not None and b is not None:
        fl = reading.guard(lambda: flames.diff_flame(a, b, f"heap growth {first} -> {last}", "inuse_space"))
        if fl is not None:
            out.append(fl)
    return out


# ---- bundle diff ----


def diff_bundles(old_path: str | os.PathLike[str], new_path: str | os.PathLike[str], *,
                 force: bool = False) -> model.BundleDiff:
    """Changes between two bundles of one pod: heap per function, goroutine groups, fds, sockets."""
    with BundleReader(old_path, force=force) as old, BundleReader(new_path, force=force) as new:
        a, b = Reading(old), Reading(new)
        ma, mb = a.manifest(), b.manifest()
        ta, tb = (ma.target if ma else None), (mb.target if mb else None)
        if ta and tb and (ta.namespace, ta.pod) != (tb.namespace, tb.pod):
            raise errors.AnalysisError(
                f"bundles are of different pods ({ta.namespace}/{ta.pod} vs {tb.namespace}/{tb.pod}); "
                "diff compares two captures of the same pod")
        heap = None
        ha = a.profile(layout.PPROF_HEAP, "heap") if old.exists(layout.PPROF_HEAP) else None
        hb = b.profile(layout.PPROF_HEAP, "heap") if new.exists(layout.PPROF_HEAP) else None
        if ha is not None and hb is not None:
            rep = a.guard(lambda: pprof.diff(ha, hb, "inuse_space"))
            heap = sections.limited(rep, sections.TOP_ROWS * 2) if rep else None  # growth and shrinkage
        dump = layout.PPROF_GOROUTINE_DEBUG2
        da = a.dump(dump) if old.exists(dump) else None
        db = b.dump(dump) if new.exists(dump) else None
        ga, gb = (None if da is None else da.summary), (None if db is None else db.summary)
        fa, fb = sections.fd_count(a), sections.fd_count(b)
        sa, sb = sections.sockets(a), sections.sockets(b)
        socks = None
        if sa is not None and sb is not None:
            socks = {k: model.CountChange(before=sa.states.get(k, 0), after=sb.states.get(k, 0))
                     for k in sorted(sa.states.keys() | sb.states.keys())}
        return model.BundleDiff(
            old=str(old.path), new=str(new.path), target=tb or ta, heap=heap,
            goroutines=None if ga is None or gb is None else model.GoroutineDiff(
                before=ga["total"], after=gb["total"], groups=tuple(goroutines.diff_groups(ga, gb))),
            fd_count=None if fa is None or fb is None else model.CountChange(before=fa, after=fb),
            sockets=socks, problems=tuple(a.problems + b.problems), hints=tuple(a.hints + b.hints))
