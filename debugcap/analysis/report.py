"""Turn one bundle into a report: what was collected, what it shows, what to look at first.

Callers: the ``report`` and ``diff`` commands of
:mod:`debugcap.kubectl_plugin.commands.analyze`. Layout: docs/bundle-format.md.

Every input file may be missing or broken. A missing file is listed under
``missing``, a broken one under ``problems``; neither stops the report.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from debugcap import errors
from debugcap.analysis import bundle_reading, flamegraph, goroutines, hints, pprof

T = TypeVar("T")

TOP_ROWS = 10

PROFILES = ["cpu", "heap", "allocs", "goroutine", "block", "mutex", "threadcreate"]
EXPECTED_FILES = [
    "manifest.json", *(f"pprof/{p}.pb.gz" for p in PROFILES), "pprof/goroutine-debug2.txt",
    "proc/fd-count.txt", "fs/df.txt", "metrics/expvar.json",
]
# The collector (as named in manifest.json) that writes each expected file: a file counts as
# missing only when its collector was asked for, so a go-leak bundle is not "missing" a CPU profile.
WRITTEN_BY = {
    **{f"pprof/{p}.pb.gz": f"pprof-{p}" for p in PROFILES},
    "pprof/goroutine.pb.gz": "pprof-goroutine", "pprof/goroutine-debug2.txt": "pprof-goroutine",
    "proc/fd-count.txt": "fd-count", "fs/df.txt": "disk", "metrics/expvar.json": "expvar",
}
MEMSTATS_KEYS = ["HeapInuse", "HeapAlloc", "NumGC", "NextGC", "Sys"]

# /proc/net/tcp "st" column (include/net/tcp_states.h).
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING", 12: "NEW_SYN_RECV"}

# Severities order the findings; the numbers only need to rank. A goroutine
# group that both looks leaked and grows is the strongest evidence we have.
SEV_GROWING_LEAK = 100
SEV_HEAP_GROWTH = 90
SEV_GOROUTINE_GROWTH = 85
SEV_LEAK_SUSPECT = 80
SEV_FD_NEAR_LIMIT = 75
SEV_DISK_FULL = 70
SEV_TRUNCATED = 68
SEV_CLOSE_WAIT = 65
SEV_COLLECTOR_FAILED = 60
SEV_HINT = 55
SEV_CONTENTION = 45
SEV_CPU_HOT = 40
SEV_HEAP_TOP = 35

# Thresholds picked by judgement: where a human should start to look.
CLOSE_WAIT_MIN = 10
FD_LIMIT_SHARE = 0.8
DISK_FULL_PCT = 90
GOROUTINE_GROWTH_MIN = 10


def _finding(severity: int, kind: str, subject: str, message: str) -> dict[str, Any]:
    level = "high" if severity >= 80 else "medium" if severity >= 55 else "low"
    return {"severity": severity, "level": level, "kind": kind, "subject": subject, "message": message}


class _Ctx:
    def __init__(self, reader: bundle_reading.BundleReader) -> None:
        self.reader = reader
        self.problems: list[str] = []
        self.hints: list[str] = []
        # The newest go-leak snapshot's dump, for bundles without pprof/goroutine-debug2.txt.
        self.latest_snapshot_dump: tuple[str, goroutines.DumpDict] | None = None

    def guard(self, fn: Callable[[], T]) -> T | None:
        """Run one analysis; a broken input becomes a problem line, never a crash."""
        try:
            return fn()
        except errors.AnalysisError as exc:
            self.problems.append(str(exc))
            return None

    def profile(self, rel: str, kind: str, requested_seconds: float | None = None) -> pprof.Profile | None:
        data = self.guard(lambda: self.reader.read(rel))
        if data is None:
            return None
        label = self.reader.label(rel)
        body = hints.error_body(data, rel)
        if body:
            self.hints.append(body)
            return None
        prof = self.guard(lambda: pprof.parse(data, label))
        if prof is not None:
            self.hints.extend(hints.profile_hints(prof, kind, rel, requested_seconds))
        return prof

    def dump(self, rel: str) -> goroutines.DumpDict | None:
        def run() -> goroutines.DumpDict | None:
            fh = self.reader.open(rel)
            if fh is None:
                return None
            with fh:
                return goroutines.parse_stream(fh, self.reader.label(rel))

        d = self.guard(run)
        if d is not None:
            self.hints.extend(hints.dump_hints(d, rel))
        return d


def _json(ctx: _Ctx, rel: str) -> Any:
    text = ctx.guard(lambda: ctx.reader.text(rel))
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        ctx.problems.append(f"{ctx.reader.label(rel)}: not valid JSON: {exc}")
        return None


def _limited(rep: pprof.TopReport, n: int = TOP_ROWS) -> dict[str, Any]:
    return {**rep, "rows": rep["rows"][:n]}


# ---- small text files ----


def parse_fd_count(text: str) -> int | None:
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None


def parse_open_files_limit(text: str) -> int | None:
    m = re.search(r"^Max open files\s+(\d+|unlimited)", text, re.MULTILINE)
    return int(m.group(1)) if m and m.group(1).isdigit() else None


def parse_df(text: str) -> list[dict[str, Any]]:
    """Rows of ``df``/``df -P``/``df -h`` output, found by the ``NN%`` column."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        pos = next((i for i, f in enumerate(fields) if re.fullmatch(r"\d+%", f)), None)
        if pos is None or pos < 4:
            continue
        out.append({"filesystem": fields[0], "size": fields[pos - 3], "used": fields[pos - 2],
                    "available": fields[pos - 1], "use_pct": int(fields[pos][:-1]),
                    "mount": " ".join(fields[pos + 1:])})
    return out


def parse_proc_net_tcp(lines: Iterable[str]) -> dict[str, int]:
    """Sockets per TCP state in /proc/net/tcp or tcp6 lines (the sockets collector uses it too)."""
    counts: dict[str, int] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(":"):
            continue
        try:
            code = int(fields[3], 16)
        except ValueError:
            continue
        state = TCP_STATES.get(code, f"UNKNOWN_{fields[3].upper()}")
        counts[state] = counts.get(state, 0) + 1
    return counts


def _socket_states_json(obj: Any) -> dict[str, int] | None:
    # Accept {"ESTABLISHED": 3}, {"states": {...}} or [{"state": "..."}...]:
    # the collector's exact shape is not fixed by the bundle format.
    if isinstance(obj, dict) and isinstance(obj.get("states"), dict | list):
        obj = obj["states"]
    if isinstance(obj, dict) and all(isinstance(v, int) for v in obj.values()):
        return {str(k).upper(): int(v) for k, v in obj.items()}
    if isinstance(obj, list):
        counts: dict[str, int] = {}
        for item in obj:
            if isinstance(item, dict) and "state" in item:
                st = str(item["state"]).upper()
                counts[st] = counts.get(st, 0) + int(item.get("count", 1))
        return counts
    return None


def sockets(ctx: _Ctx) -> dict[str, Any] | None:
    if ctx.reader.exists("net/socket-states.json"):
        states = _socket_states_json(_json(ctx, "net/socket-states.json"))
        if states is not None:
            return {"source": "net/socket-states.json", "states": states}
        ctx.problems.append(f"{ctx.reader.label('net/socket-states.json')}: unrecognised shape")
    total: dict[str, int] = {}
    sources = []
    for rel in ("net/proc-net-tcp.txt", "net/proc-net-tcp6.txt"):
        text = ctx.guard(lambda rel=rel: ctx.reader.text(rel))  # type: ignore[misc]
        if text is None:
            continue
        sources.append(rel)
        for k, v in parse_proc_net_tcp(text.splitlines()).items():
            total[k] = total.get(k, 0) + v
    return {"source": ", ".join(sources), "states": total} if sources else None


# ---- snapshots (go-leak) ----


def _snapshot_dirs(reader: bundle_reading.BundleReader) -> list[str]:
    dirs = {m.group(1) for n in reader.names() if (m := re.match(r"pprof/snapshots/(\d+)/", n))}
    return [f"pprof/snapshots/{d}" for d in sorted(dirs, key=int)]


def snapshots(ctx: _Ctx) -> dict[str, Any] | None:
    dirs = _snapshot_dirs(ctx.reader)
    if not dirs:
        return None
    out: dict[str, Any] = {"count": len(dirs), "dirs": dirs}
    heaps = [(d, ctx.profile(f"{d}/heap.pb.gz", "heap")) for d in dirs]
    heaps_ok = [(d, p) for d, p in heaps if p is not None]
    if len(heaps_ok) >= 2:
        (d0, first), (d1, last) = heaps_ok[0], heaps_ok[-1]
        rep = ctx.guard(lambda: pprof.diff(first, last, "inuse_space"))
        if rep is not None:
            minutes = (last.time_ns - first.time_ns) / 60e9 if first.time_ns and last.time_ns else 0.0
            growth = sorted((r for r in rep["rows"] if r["flat"] > 0), key=lambda r: -r["flat"])
            out["heap_growth"] = {
                "from": d0, "to": d1, "minutes": round(minutes, 2), "sample_type": rep["sample_type"],
                "rows": [{"function": r["function"], "growth": r["flat"],
                          "per_minute": round(r["flat"] / minutes) if minutes > 0 else None}
                         for r in growth[:TOP_ROWS]]}
    dumps = [(d, ctx.dump(f"{d}/goroutine-debug2.txt")) for d in dirs]
    dumps_ok = [(d, g) for d, g in dumps if g is not None]
    if dumps_ok:
        out["goroutine_totals"] = [{"snapshot": d, "total": g["total"]} for d, g in dumps_ok]
        ctx.latest_snapshot_dump = (f"{dumps_ok[-1][0]}/goroutine-debug2.txt", dumps_ok[-1][1])
    if len(dumps_ok) >= 2:
        out["goroutine_changes"] = goroutines.diff_groups(dumps_ok[0][1], dumps_ok[-1][1])[:TOP_ROWS]
    return out


# ---- the report ----


def build(path: str | os.PathLike[str], html_flames: list[flamegraph.Flame] | None = None,
          keep_profiles: dict[str, pprof.Profile] | None = None) -> dict[str, Any]:
    """The report dict for one bundle (packed or unpacked).

    ``html_flames``/``keep_profiles``, when given, are filled with flame graphs
    and parsed profiles so the HTML and speedscope outputs reuse this one parse.
    """
    with bundle_reading.BundleReader(path) as reader:
        return _build(reader, html_flames, keep_profiles)


def _build(reader: bundle_reading.BundleReader, flames: list[flamegraph.Flame] | None,
           keep: dict[str, pprof.Profile] | None) -> dict[str, Any]:
    ctx = _Ctx(reader)
    rep: dict[str, Any] = {"bundle": str(reader.path)}
    manifest = _json(ctx, "manifest.json") if reader.exists("manifest.json") else None
    manifest = manifest if isinstance(manifest, dict) else {}
    rep["target"] = manifest.get("target", {})
    rep["capture"] = manifest.get("capture", {})
    collectors = [c for c in manifest.get("collectors", []) if isinstance(c, dict)]
    rep["collectors"] = [{k: c.get(k) for k in ("name", "status", "message", "files")} for c in collectors]
    rep["failed"] = [c.get("name") for c in collectors if c.get("status") in ("failed", "partial")]
    ran = {c.get("name") for c in collectors}
    rep["missing"] = [f for f in EXPECTED_FILES if not reader.exists(f)
                      and (not collectors or f not in WRITTEN_BY or WRITTEN_BY[f] in ran)]
    rep["errors"] = {}
    for name in reader.names():
        if name.startswith("errors/"):
            text = ctx.guard(lambda name=name: reader.text(name))  # type: ignore[misc]
            rep["errors"][name.removeprefix("errors/")] = errors.shorten(text or "", 300)

    params = rep["capture"].get("parameters", {}) if isinstance(rep["capture"], dict) else {}
    cpu_seconds = params.get("cpu_seconds") if isinstance(params, dict) else None
    profs: dict[str, pprof.Profile] = {}
    for kind in PROFILES:
        rel = f"pprof/{kind}.pb.gz"
        if reader.exists(rel):
            prof = ctx.profile(rel, kind, cpu_seconds if kind == "cpu" else None)
            if prof is not None:
                profs[kind] = prof
    if keep is not None:
        keep.update(profs)

    def top_of(kind: str, index: str | None = None) -> dict[str, Any] | None:
        prof = profs.get(kind)
        if prof is None:
            return None
        r = ctx.guard(lambda: pprof.top(prof, index, pprof.PPROF_NODE_FRACTION))
        return _limited(r) if r else None

    rep["cpu"] = top_of("cpu")
    rep["heap"] = top_of("heap", "inuse_space")
    rep["block"] = top_of("block")
    rep["mutex"] = top_of("mutex")
    dump_rel = "pprof/goroutine-debug2.txt"
    dump = ctx.dump(dump_rel) if reader.exists(dump_rel) else None
    rep["snapshots"] = snapshots(ctx)
    if dump is None and ctx.latest_snapshot_dump is not None:
        # A go-leak bundle has no top-level dump: its leak suspects are in the newest snapshot.
        dump_rel, dump = ctx.latest_snapshot_dump
    rep["goroutines"] = None if dump is None else {
        "source": dump_rel, "total": dump["total"], "truncated": dump["truncated"],
        "groups": dump["groups"][:TOP_ROWS * 2]}
    rep["leak_suspects"] = goroutines.suspects(dump) if dump else []
    rep["sockets"] = sockets(ctx)
    fd_text = ctx.guard(lambda: reader.text("proc/fd-count.txt"))
    rep["fd_count"] = parse_fd_count(fd_text) if fd_text else None
    limits = ctx.guard(lambda: reader.text("proc/limits.txt"))
    rep["fd_limit"] = parse_open_files_limit(limits) if limits else None
    df = ctx.guard(lambda: reader.text("fs/df.txt"))
    rep["disk"] = parse_df(df) if df else None
    expvar = _json(ctx, "metrics/expvar.json") if reader.exists("metrics/expvar.json") else None
    mem = expvar.get("memstats") if isinstance(expvar, dict) else None
    rep["memstats"] = {k: mem.get(k) for k in MEMSTATS_KEYS} if isinstance(mem, dict) else None
    rep["findings"] = findings(rep, ctx.hints)
    rep["hints"] = ctx.hints
    rep["problems"] = ctx.problems

    if flames is not None:
        for kind in PROFILES:
            if kind in profs and kind != "threadcreate":
                fl = ctx.guard(lambda kind=kind: flamegraph.profile_flame(profs[kind], kind))  # type: ignore[misc]
                if fl is not None:
                    flames.append(fl)
        dirs = _snapshot_dirs(reader)
        if len(dirs) >= 2:
            a = ctx.guard(lambda: pprof.parse(reader.read(f"{dirs[0]}/heap.pb.gz") or b"", dirs[0]))
            b = ctx.guard(lambda: pprof.parse(reader.read(f"{dirs[-1]}/heap.pb.gz") or b"", dirs[-1]))
            if a is not None and b is not None:
                fl = ctx.guard(lambda: flamegraph.diff_flame(a, b, f"heap growth {dirs[0]} -> {dirs[-1]}",
                                                             "inuse_space"))
                if fl is not None:
                    flames.append(fl)
    return rep


def findings(rep: dict[str, Any], hint_lines: list[str]) -> list[dict[str, Any]]:
    """The short list a human reads first, most serious first."""
    out: list[dict[str, Any]] = []
    snaps = rep.get("snapshots") or {}
    changes = {(c["state"], c["function"]): c for c in snaps.get("goroutine_changes", [])}
    for g in rep.get("leak_suspects", []):
        ch = changes.get((g["state"], g["function"]))
        wait = f", parked up to {g['max_wait_minutes']} min" if g["max_wait_minutes"] else ""
        if ch and ch["change"] > 0:
            out.append(_finding(SEV_GROWING_LEAK, "goroutine-leak", g["function"],
                                f"goroutine leak suspect at {g['function']}: {g['count']} goroutines in "
                                f"[{g['state']}]{wait}, grew from {ch['before']} to {ch['after']} across "
                                f"snapshots (created by {g['created_by'] or 'unknown'})"))
        else:
            out.append(_finding(SEV_LEAK_SUSPECT, "goroutine-leak", g["function"],
                                f"goroutine leak suspect at {g['function']}: {g['count']} goroutines in "
                                f"[{g['state']}]{wait} (created by {g['created_by'] or 'unknown'})"))
    growth = snaps.get("heap_growth")
    if growth and growth["rows"]:
        r = growth["rows"][0]
        rate = f" ({_bytes(r['per_minute'])}/min)" if r.get("per_minute") else ""
        others = ", ".join(f"{x['function']} +{_bytes(x['growth'])}" for x in growth["rows"][1:4])
        out.append(_finding(SEV_HEAP_GROWTH, "heap-growth", r["function"],
                            f"heap growth: {r['function']} in-use memory grew by {_bytes(r['growth'])}"
                            f"{rate} from {growth['from']} to {growth['to']}"
                            + (f"; next: {others}" if others else "")))
    totals = snaps.get("goroutine_totals", [])
    if len(totals) >= 2 and totals[-1]["total"] - totals[0]["total"] >= GOROUTINE_GROWTH_MIN:
        top_change = next((c for c in snaps.get("goroutine_changes", []) if c["change"] > 0), None)
        where = top_change["function"] if top_change else "?"
        out.append(_finding(SEV_GOROUTINE_GROWTH, "goroutine-growth", where,
                            f"goroutine count grew from {totals[0]['total']} to {totals[-1]['total']} "
                            f"across {len(totals)} snapshots, most in {where}"))
    fd, limit = rep.get("fd_count"), rep.get("fd_limit")
    if fd is not None and limit and fd >= limit * FD_LIMIT_SHARE:
        out.append(_finding(SEV_FD_NEAR_LIMIT, "fd-limit", "file descriptors",
                            f"{fd} open file descriptors, {100 * fd / limit:.0f}% of the limit {limit}"))
    for d in rep.get("disk") or []:
        if d["use_pct"] >= DISK_FULL_PCT:
            out.append(_finding(SEV_DISK_FULL, "disk-full", d["mount"],
                                f"filesystem {d['mount']} ({d['filesystem']}) is {d['use_pct']}% full"))
    gor = rep.get("goroutines")
    if gor and gor["truncated"]:
        where = str(gor.get("source") or "pprof/goroutine-debug2.txt")
        out.append(_finding(SEV_TRUNCATED, "truncated-dump", where,
                            f"goroutine dump {where} was cut at Go's 64 MB limit; counts are too low"))
    sock = rep.get("sockets")
    if sock and sock["states"].get("CLOSE_WAIT", 0) >= CLOSE_WAIT_MIN:
        out.append(_finding(SEV_CLOSE_WAIT, "close-wait", "sockets",
                            f"{sock['states']['CLOSE_WAIT']} sockets in CLOSE_WAIT: the peer closed but "
                            "the program never closed its side (missing Close, e.g. on resp.Body)"))
    for c in rep.get("collectors", []):
        if c.get("status") in ("failed", "partial"):
            out.append(_finding(SEV_COLLECTOR_FAILED, "collector-failed", str(c.get("name")),
                                f"collector {c.get('name')} {c.get('status')}: "
                                f"{c.get('message') or 'no message'}"))
    for h in hint_lines:
        out.append(_finding(SEV_HINT, "hint", h.split(" ", 1)[0], h))
    for kind in ("block", "mutex"):
        t = rep.get(kind)
        if t and t["rows"] and t["total"]:
            r = max(t["rows"], key=lambda r: (r["flat"], r["function"]))
            out.append(_finding(SEV_CONTENTION, f"{kind}-delay", r["function"],
                                f"{kind} delay: {r['function']} waited {r['flat'] / 1e9:.3g}s "
                                f"({r['flat_pct']:.1f}% of {t['total'] / 1e9:.3g}s)"))
    cpu = rep.get("cpu")
    if cpu and cpu["rows"] and cpu["total"]:
        r = cpu["rows"][0]
        out.append(_finding(SEV_CPU_HOT, "cpu-hot", r["function"],
                            f"CPU: {r['function']} is the hottest function, {r['flat_pct']:.1f}% flat, "
                            f"{r['cum_pct']:.1f}% cum of {cpu['total'] / 1e9:.3g}s sampled"))
    heap = rep.get("heap")
    if heap and heap["rows"] and heap["total"]:
        r = heap["rows"][0]
        out.append(_finding(SEV_HEAP_TOP, "heap-top", r["function"],
                            f"heap: {r['function']} holds {_bytes(r['flat'])} in use "
                            f"({r['flat_pct']:.1f}% of {_bytes(heap['total'])})"))
    out.sort(key=lambda f: -f["severity"])  # stable: equal severities keep their order
    return out


def _bytes(n: float | None) -> str:
    if n is None:
        return "?"
    v = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(v) < 1024 or unit == "GB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GB"


# ---- bundle diff ----


def diff_bundles(old_path: str | os.PathLike[str], new_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Changes between two bundles of one pod: heap per function, goroutine groups, fds, sockets."""
    with bundle_reading.BundleReader(old_path) as old, bundle_reading.BundleReader(new_path) as new:
        a, b = _Ctx(old), _Ctx(new)
        ma = _json(a, "manifest.json") if old.exists("manifest.json") else None
        mb = _json(b, "manifest.json") if new.exists("manifest.json") else None
        ta = (ma or {}).get("target", {}) if isinstance(ma, dict) else {}
        tb = (mb or {}).get("target", {}) if isinstance(mb, dict) else {}
        pod_a = (ta.get("namespace"), ta.get("pod"))
        pod_b = (tb.get("namespace"), tb.get("pod"))
        if all(pod_a) and all(pod_b) and pod_a != pod_b:
            raise errors.AnalysisError(
                f"bundles are of different pods ({'/'.join(map(str, pod_a))} vs "
                f"{'/'.join(map(str, pod_b))}); "
                "diff compares two captures of the same pod")
        out: dict[str, Any] = {"old": str(old.path), "new": str(new.path), "target": tb or ta}
        ha = a.profile("pprof/heap.pb.gz", "heap") if old.exists("pprof/heap.pb.gz") else None
        hb = b.profile("pprof/heap.pb.gz", "heap") if new.exists("pprof/heap.pb.gz") else None
        if ha is not None and hb is not None:
            rep = a.guard(lambda: pprof.diff(ha, hb, "inuse_space"))
            out["heap"] = _limited(rep, TOP_ROWS * 2) if rep else None  # all rows: growth and shrinkage
        else:
            out["heap"] = None
        ga = a.dump("pprof/goroutine-debug2.txt") if old.exists("pprof/goroutine-debug2.txt") else None
        gb = b.dump("pprof/goroutine-debug2.txt") if new.exists("pprof/goroutine-debug2.txt") else None
        out["goroutines"] = None if ga is None or gb is None else {
            "before": ga["total"], "after": gb["total"], "groups": goroutines.diff_groups(ga, gb)}
        fa = parse_fd_count(old.text("proc/fd-count.txt") or "")
        fb = parse_fd_count(new.text("proc/fd-count.txt") or "")
        out["fd_count"] = None if fa is None or fb is None else {"before": fa, "after": fb, "change": fb - fa}
        sa, sb = sockets(a), sockets(b)
        if sa is not None and sb is not None:
            keys = sorted(sa["states"].keys() | sb["states"].keys())
            out["sockets"] = {k: {"before": sa["states"].get(k, 0), "after": sb["states"].get(k, 0),
                                  "change": sb["states"].get(k, 0) - sa["states"].get(k, 0)} for k in keys}
        else:
            out["sockets"] = None
        out["problems"] = a.problems + b.problems
        out["hints"] = a.hints + b.hints
        return out


# ---- rendering ----


def render_text(rep: dict[str, Any]) -> str:
    """The table form of a report, for a terminal."""
    lines: list[str] = []
    tgt = rep.get("target") or {}
    lines.append(f"Bundle: {rep['bundle']}")
    if tgt:
        lines.append(f"Target: {tgt.get('namespace', '?')}/{tgt.get('pod', '?')} "
                     f"container {tgt.get('container', '?')}")
    lines.append("")
    lines.append("Findings (most serious first):")
    for f in rep["findings"] or [{"level": "", "message": "nothing stands out"}]:
        lines.append(f"  [{f['level']:<6}] {f['message']}")
    if rep["collectors"]:
        lines.append("")
        lines.append("Collectors:")
        for c in rep["collectors"]:
            msg = f"  {c.get('message')}" if c.get("message") else ""
            lines.append(f"  {str(c.get('name')):<20} {str(c.get('status')):<8}{msg}")
    if rep["missing"]:
        lines.append("")
        lines.append("Missing: " + ", ".join(rep["missing"]))
    for key, title in (("cpu", "CPU"), ("heap", "Heap in use"), ("block", "Block delay"),
                       ("mutex", "Mutex delay")):
        if rep.get(key):
            lines.append("")
            lines.append(f"{title}:")
            lines.extend("  " + ln for ln in pprof.render_top(rep[key]).splitlines())
    if rep.get("goroutines"):
        lines.append("")
        lines.append("Goroutines:")
        lines.extend("  " + ln for ln in goroutines.render_table(rep["goroutines"]).splitlines())
    if rep.get("sockets"):
        st = rep["sockets"]["states"]
        lines.append("")
        lines.append("Sockets: " + (", ".join(f"{k} {v}" for k, v in sorted(st.items())) or "none"))
    if rep.get("fd_count") is not None:
        lim = f" (limit {rep['fd_limit']})" if rep.get("fd_limit") else ""
        lines.append(f"Open fds: {rep['fd_count']}{lim}")
    for d in rep.get("disk") or []:
        lines.append(f"Disk: {d['mount']} {d['use_pct']}% used ({d['used']} of {d['size']})")
    if rep.get("memstats"):
        lines.append("Memstats: " + ", ".join(f"{k}={v}" for k, v in rep["memstats"].items()))
    for title, key in (("Hints", "hints"), ("Problems", "problems")):
        if rep.get(key):
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"  {h}" for h in rep[key])
    return "\n".join(lines) + "\n"


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{html.escape(str(v))}</td>"
                         for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(rep: dict[str, Any], flames: list[flamegraph.Flame]) -> str:
    sections: list[str] = []
    tgt = rep.get("target") or {}
    sections.append(f"<p>Bundle {html.escape(str(rep['bundle']))}"
                    + (f", pod {html.escape(str(tgt.get('namespace')))}/{html.escape(str(tgt.get('pod')))}"
                       if tgt else "") + "</p>")
    sections.append("<h2>Findings</h2><ol>" + "".join(
        f"<li class=\"sev-{f['level']}\">{html.escape(f['message'])}</li>" for f in rep["findings"])
        + "</ol>")
    if rep["collectors"]:
        sections.append("<h2>Collectors</h2>" + _table(
            ["collector", "status", "message"],
            [[c.get("name"), c.get("status"), c.get("message") or ""] for c in rep["collectors"]]))
    if rep["missing"]:
        sections.append("<h2>Missing files</h2><p>" + html.escape(", ".join(rep["missing"])) + "</p>")
    for key, title in (("cpu", "CPU"), ("heap", "Heap in use"), ("block", "Block delay"),
                       ("mutex", "Mutex delay")):
        t = rep.get(key)
        if t:
            suffix, div = pprof.pick_scale(t["unit"], [v for r in t["rows"] for v in (r["flat"], r["cum"])])
            sections.append(f"<h2>{title}</h2>" + _table(
                ["flat", "flat%", "sum%", "cum", "cum%", "function"],
                [[pprof.format_value(r["flat"], suffix, div), f"{r['flat_pct']:.2f}%", f"{r['sum_pct']:.2f}%",
                  pprof.format_value(r["cum"], suffix, div), f"{r['cum_pct']:.2f}%", r["function"]]
                 for r in t["rows"]], {0, 1, 2, 3, 4}))
    g = rep.get("goroutines")
    if g:
        sections.append(f"<h2>Goroutines ({g['total']})</h2>" + _table(
            ["count", "state", "function", "max wait (min)", "created by", "suspect"],
            [[x["count"], x["state"], x["function"], x["max_wait_minutes"], x["created_by"],
              "yes" if x["suspect"] else ""] for x in g["groups"]], {0, 3}))
    if rep.get("sockets"):
        sections.append("<h2>Sockets</h2>" + _table(
            ["state", "count"], [[k, v] for k, v in sorted(rep["sockets"]["states"].items())], {1}))
    misc = []
    if rep.get("fd_count") is not None:
        misc.append(["open fds", rep["fd_count"]])
    for d in rep.get("disk") or []:
        misc.append([f"disk {d['mount']}", f"{d['use_pct']}% used"])
    for k, v in (rep.get("memstats") or {}).items():
        misc.append([k, v])
    if misc:
        sections.append("<h2>Resources</h2>" + _table(["what", "value"], misc))
    for title, key in (("Hints", "hints"), ("Problems", "problems")):
        if rep.get(key):
            sections.append(f"<h2>{title}</h2><ul>" + "".join(
                f"<li>{html.escape(h)}</li>" for h in rep[key]) + "</ul>")
    name = tgt.get("pod") or os.path.basename(str(rep["bundle"]))
    return flamegraph.render_html(f"debugcap report: {name}", sections, flames)
