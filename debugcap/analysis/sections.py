"""Read one section of a report out of a bundle: what was expected, snapshots, sockets, resources.

Callers: :mod:`debugcap.analysis.report`, which assembles these sections into a
:class:`debugcap.analysis.model.Report` or :class:`~debugcap.analysis.model.BundleDiff`.
Every path comes from :mod:`debugcap.bundle.layout`; every function takes a
:class:`debugcap.analysis.bundle_reading.Reading`, so a missing or broken file
leaves its section None and adds a problem line or a hint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import yaml

from debugcap import errors
from debugcap.analysis import appcode, attribution, goroutines, model, pprof
from debugcap.analysis.bundle_reading import Reading
from debugcap.bundle import layout, manifest
from debugcap.formats import df, gostats, procfs
from debugcap.formats import pprof as pprof_format

TOP_ROWS: Final = 10

# What a full capture holds; absent ones are listed under "missing". Not the goroutineleak
# profile: most programs do not serve it, and its collector then says so itself (skipped).
EXPECTED_FILES: Final = (
    layout.MANIFEST, *(p for p in layout.PPROF_PROFILES.values() if p != layout.PPROF_GOROUTINELEAK),
    layout.PPROF_GOROUTINE_DEBUG2,
    layout.PROC_FD_COUNT, layout.FS_DF, layout.METRICS_EXPVAR,
)
# The collector (as named in manifest.json) that writes each expected file: a file counts as
# missing only when its collector was asked for, so a go-leak bundle is not "missing" a CPU profile.
WRITTEN_BY: Final = {
    **{path: f"pprof-{kind}" for kind, path in layout.PPROF_PROFILES.items()},
    layout.PPROF_GOROUTINE_DEBUG2: "pprof-goroutine",
    layout.PROC_FD_COUNT: "fd-count", layout.FS_DF: "disk", layout.METRICS_EXPVAR: "expvar",
}
MEMSTATS_KEYS: Final = ("HeapInuse", "HeapAlloc", "NumGC", "NextGC", "Sys")


def limited(rep: pprof.TopReport, n: int = TOP_ROWS) -> pprof.TopReport:
    """The top with only its first ``n`` rows: a report shows where to look, not everything."""
    return {**rep, "rows": rep["rows"][:n]}


def missing(reading: Reading, collectors: tuple[manifest.CollectorRecord, ...]) -> tuple[str, ...]:
    # A skipped collector wrote nothing by design (not applicable, or left out by the capture, as a
    # memory trigger's capture leaves out the CPU profile): its message says why, its files are not missing.
    ran = {c.name for c in collectors if c.status is not manifest.CollectorStatus.SKIPPED}
    # What a damaged bundle's reader could not reach was lost, not left uncollected (its problems say so).
    return tuple(f for f in EXPECTED_FILES if not reading.reader.exists(f) and not reading.reader.lost(f)
                 and (not collectors or f not in WRITTEN_BY or WRITTEN_BY[f] in ran))


def error_texts(reading: Reading) -> dict[str, str]:
    """``errors/<file>`` texts by file name, cut short: the endpoint's or command's own words."""
    out = {}
    for name in reading.reader.names():
        if name.startswith(layout.ERRORS_DIR):
            out[name.removeprefix(layout.ERRORS_DIR)] = errors.shorten(reading.text(name) or "", 300)
    return out


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


def sockets(reading: Reading) -> model.Sockets | None:
    """Sockets per TCP state: the collector's own counts, else counted from /proc/net/tcp{,6}."""
    reader = reading.reader
    if reader.exists(layout.NET_SOCKET_STATES):
        states = _socket_states_json(reading.read_json(layout.NET_SOCKET_STATES))
        if states is not None:
            return model.Sockets(source=layout.NET_SOCKET_STATES, states=states)
        reading.problems.append(f"{reader.label(layout.NET_SOCKET_STATES)}: unrecognised shape")
    total: dict[str, int] = {}
    sources = []
    for rel in (layout.NET_PROC_TCP, layout.NET_PROC_TCP6):
        text = reading.text(rel)
        if text is None:
            continue
        sources.append(rel)
        for k, v in procfs.parse_proc_net_tcp(text.splitlines()).items():
            total[k] = total.get(k, 0) + v
    return model.Sockets(source=", ".join(sources), states=total) if sources else None


def fd_count(reading: Reading) -> int | None:
    text = reading.text(layout.PROC_FD_COUNT)
    return procfs.parse_fd_count(text) if text else None


def fd_limit(reading: Reading) -> int | None:
    text = reading.text(layout.PROC_LIMITS)
    return procfs.parse_open_files_limit(text) if text else None


def disk(reading: Reading) -> tuple[df.DfRow, ...] | None:
    text = reading.text(layout.FS_DF)
    return tuple(df.parse_df(text)) if text else None


def expvar_memstats(reading: Reading) -> Mapping[str, object] | None:
    """Expvar's ``memstats`` object (all of runtime.MemStats), read once per bundle: a broken
    ``metrics/expvar.json`` is one problem line, not one per section read from it."""
    expvar = reading.read_json(layout.METRICS_EXPVAR)
    mem = expvar.get("memstats") if isinstance(expvar, dict) else None
    return mem if isinstance(mem, dict) else None


def memstats(mem: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """The headline runtime.MemStats fields of expvar's ``memstats``."""
    return {k: mem.get(k) for k in MEMSTATS_KEYS} if mem is not None else None


def gc_pauses(mem: Mapping[str, object] | None) -> gostats.GcPauses | None:
    """The GC's stop-the-world pauses from expvar's ``memstats`` (``PauseNs``, ``PauseTotalNs``):
    runtime.MemStats counts only GC pauses, not the stops the capture itself causes (a goroutine
    profile, ReadMemStats, starting the trace), which the execution trace's pauses include."""
    return gostats.gc_pauses(mem) if mem is not None else None


def goroutine_section(source: str, dump: goroutines.DumpDict) -> model.GoroutineSection:
    return model.GoroutineSection(source=source, total=dump["total"], truncated=dump["truncated"],
                                  groups=tuple(dump["groups"][:TOP_ROWS * 2]))


def proven_leaks(reading: Reading, profile: pprof_format.Profile | None,
                 code: appcode.Code | None = None) -> model.ProvenLeaks | None:
    """The goroutineleak profile by own function, as dumps group; else the leaked groups of its dump."""
    if profile is not None:
        groups = reading.guard(lambda: goroutines.leak_groups(profile, code))
        if groups is not None:
            return model.ProvenLeaks(source=layout.PPROF_GOROUTINELEAK, total=sum(g["count"] for g in groups),
                                     groups=tuple(groups[:TOP_ROWS]))
    rel = layout.PPROF_GOROUTINELEAK_DEBUG2
    parsed = reading.dump(rel) if reading.reader.exists(rel) else None
    if parsed is None:
        return None
    leak_dump = parsed.summary
    leaked = [goroutines.LeakGroupDict(function=g["function"], count=g["leaked"])
              for g in goroutines.leaked(leak_dump)]
    leaked.sort(key=lambda g: (-g["count"], g["function"]))
    return model.ProvenLeaks(source=rel, total=sum(g["count"] for g in leaked), groups=tuple(leaked[:TOP_ROWS]))


def _heap_growth(reading: Reading, indices: list[int], code: appcode.Code | None) -> model.HeapGrowth | None:
    heaps = [(i, reading.profile(layout.snapshot_path(i, layout.SNAPSHOT_HEAP), "heap")) for i in indices]
    heaps_ok = [(i, p) for i, p in heaps if p is not None]
    if len(heaps_ok) < 2:
        return None
    (i0, first), (i1, last) = heaps_ok[0], heaps_ok[-1]
    # Checked as a diff is, so two snapshots that cannot be compared say why.
    if reading.guard(lambda: pprof.compatible_index(first, last, "inuse_space")) is None:
        return None
    minutes = (last.time_ns - first.time_ns) / 60e9 if first.time_ns and last.time_ns else 0.0
    own = code or attribution.code_of([first, last])
    rows = reading.guard(lambda: attribution.growth(first, last, own, minutes, rows=TOP_ROWS))
    if rows is None:
        return None
    return model.HeapGrowth(first=layout.snapshot_dir(i0), last=layout.snapshot_dir(i1), minutes=round(minutes, 2),
                            sample_type="inuse_space", rows=rows)


def snapshots(reading: Reading, code: appcode.Code | None = None
              ) -> tuple[model.Snapshots | None, tuple[str, goroutines.Dump] | None]:
    """The go-leak snapshots compared first to last, and the newest snapshot's dump with its path.

    A go-leak bundle has no top-level goroutine dump: its leak suspects are in the
    newest snapshot, which is why that dump comes back as well.
    """
    indices = layout.snapshot_indices(reading.reader.names())
    if not indices:
        return None, None
    heap_growth = _heap_growth(reading, indices, code)
    dumps = [(layout.snapshot_path(i, layout.SNAPSHOT_GOROUTINE_DEBUG2), i) for i in indices]
    dumps_ok = [(rel, i, d) for rel, i in dumps if (d := reading.dump(rel)) is not None]
    snaps = model.Snapshots(
        dirs=tuple(layout.snapshot_dir(i) for i in indices), heap_growth=heap_growth,
        goroutine_totals=tuple(model.SnapshotTotal(snapshot=layout.snapshot_dir(i), total=d.summary["total"])
                               for _, i, d in dumps_ok) or None,
        goroutine_changes=(tuple(goroutines.diff_groups(dumps_ok[0][2].summary, dumps_ok[-1][2].summary)[:TOP_ROWS])
                           if len(dumps_ok) >= 2 else None))
    return snaps, (dumps_ok[-1][0], dumps_ok[-1][2]) if dumps_ok else None


def waiting(parsed: goroutines.Dump, code: appcode.Code | None) -> tuple[model.Waiters, ...]:
    """The dump's goroutines by state and own function: the bundle's own code, else the dump's."""
    return attribution.waiting(parsed.stacks, code or parsed.code)


# libyaml's parser when the wheel has it (as collectors/base.py dumps with libyaml's emitter): the
# pure-Python one took 4-6 ms of operator CPU per pod for a 2 KB pod YAML (issue 17). Both build
# the document with the same safe constructor, so the pod read is the same.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UNQUOTED_MASK = re.compile(r"(:\s+|-\s+)(\*\*\*REDACTED\*\*\*)\s*$", re.MULTILINE)
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?(?:[eE]\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           **{s: float(1 << (10 * (i + 1))) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}}


def quantity(text: object) -> float | None:
    """A Kubernetes resource quantity (``1500m``, ``256Mi``, ``2``) as a number; None if unreadable."""
    m = _QUANTITY.match(str(text).strip()) if text is not None else None
    value = float(m.group(1)) * _SUFFIX[m.group(2) or ""] if m else None
    return value if value is None or math.isfinite(value) else None  # 1e999 reads as inf: no limit known


def _utc(when: datetime) -> datetime:
    # A time without a zone (YAML's 2026-11-23T15:00:00, no Z) is the API server's: UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _started(status: Mapping[str, Any]) -> datetime | None:
    state = status.get("state")
    running = state.get("running") if isinstance(state, dict) else None
    when = running.get("startedAt") if isinstance(running, dict) else None
    if isinstance(when, datetime):
        return _utc(when)
    try:
        return _utc(datetime.fromisoformat(str(when).replace("Z", "+00:00"))) if when else None
    except ValueError:
        return None


def _named(items: object, name: str) -> dict[str, Any] | None:
    """The mapping named ``name`` in a YAML list of them; None when the list is none, or has none."""
    if not isinstance(items, list):
        return None
    return next((c for c in items if isinstance(c, dict) and c.get("name") == name), None)


def _section(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def container(reading: Reading, name: str, captured_at: datetime | None) -> model.Container | None:
    """The target container's limits and uptime at the capture, from the bundle's pod YAML.

    The YAML is whatever the bundle holds: a shape this does not expect leaves the section None
    with a problem line, never a traceback.
    """
    def run() -> model.Container | None:
        try:
            return _container(reading, name, captured_at)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # The checks in _container are meant to leave nothing to raise; should one slip, the
            # report still comes out, with the pod YAML named as what it could not read.
            raise errors.AnalysisError(f"{reading.reader.label(layout.K8S_POD)}: unexpected pod shape: {exc}") from exc

    return reading.guard(run)


def _container(reading: Reading, name: str, captured_at: datetime | None) -> model.Container | None:
    text = reading.text(layout.K8S_POD) if reading.reader.exists(layout.K8S_POD) else None
    if text:
        # The bundle's redaction writes an unquoted mask (automountServiceAccountToken: ***REDACTED***),
        # which YAML reads as an alias and rejects: quote it so the rest of the pod is still read.
        text = _UNQUOTED_MASK.sub(r"\1'\2'", text)
    try:
        pod = yaml.load(text, Loader=_YAML_LOADER) if text else None
    except yaml.YAMLError as exc:
        reading.problems.append(f"{reading.reader.label(layout.K8S_POD)}: not valid YAML: {exc}")
        return None
    except RecursionError:  # the pure-Python loader on a hostile nesting (libyaml refuses it as YAMLError)
        reading.problems.append(f"{reading.reader.label(layout.K8S_POD)}: not read: it nests too deeply")
        return None
    if not isinstance(pod, dict):
        return None
    spec = _named(_section(pod, "spec").get("containers"), name)
    if spec is None:
        return None
    limits = _section(_section(spec, "resources"), "limits")
    memory = quantity(limits.get("memory"))
    started = _started(_named(_section(pod, "status").get("containerStatuses"), name) or {})
    uptime = (_utc(captured_at) - started).total_seconds() if started and captured_at else None
    return model.Container(name=name, cpu_limit=quantity(limits.get("cpu")),
                           memory_limit=None if memory is None else int(memory),
                           uptime_seconds=uptime if uptime is None or uptime >= 0 else None,
                           started_at=started.timestamp() if started else None)
