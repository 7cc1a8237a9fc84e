"""Read pprof profiles and summarise them exactly as ``go tool pprof -top`` does.

Callers: :mod:`debugcap.analysis.report`, :mod:`debugcap.analysis.flamegraph`
and the ``top``/``diff`` commands of :mod:`debugcap.kubectl_plugin.commands.analyze`.

The algorithms mirror google/pprof (``internal/graph/graph.go`` ``newGraph``,
``internal/report/report.go`` ``computeTotal``, ``profile/index.go``
``SampleIndexByName``, ``Nodes.Sort(FlatNameOrder)``) at pprof's default
"functions" granularity; see shared/research/pprof.md §3. Tests compare every
row with the real tool.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, TypedDict

from google.protobuf.message import DecodeError

from debugcap import errors
from debugcap.analysis import profile_proto

GZIP_MAGIC = b"\x1f\x8b"

# A profile that inflates past this is a decompression bomb or not a profile;
# real heap profiles stay well under 100 MB (research notes §6). Judgement call.
MAX_UNCOMPRESSED_BYTES = 1 << 30

# pprof's default -nodefraction (internal/driver/config.go).
PPROF_NODE_FRACTION = 0.005

# A stack of node ids, leaf first (pprof's Sample.location_id order, with
# inlined frames expanded innermost first).
NodeStack = tuple[int, ...]


class UnknownSampleTypeError(errors.AnalysisError):
    """The requested sample index names no sample type of the profile."""


@dataclass(frozen=True)
class SampleType:
    type: str
    unit: str


@dataclass
class Profile:
    """A validated profile, reduced to what the analyses need.

    ``loc_nodes`` maps a location id to the node ids of its lines, innermost
    first, where a node is one function (pprof's "functions" granularity):
    inlined functions are nodes of their own, file/line/address are dropped.
    """

    source: str
    sample_types: list[SampleType]
    default_sample_type: str
    duration_ns: int
    time_ns: int
    period_type: SampleType | None
    period: int
    stacks: list[tuple[int, ...]]
    values: list[tuple[int, ...]]
    loc_nodes: dict[int, tuple[int, ...]]
    node_names: list[str]
    node_files: list[str]
    inline_label: dict[int, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def sample_count(self) -> int:
        return len(self.stacks)

    def is_empty(self) -> bool:
        return not any(any(v) for v in self.values)


class TopRow(TypedDict):
    function: str
    flat: int
    flat_pct: float
    sum_pct: float
    cum: int
    cum_pct: float


class TopReport(TypedDict):
    sample_type: str
    unit: str
    total: int
    duration_ns: int
    rows: list[TopRow]


# ---- reading ----


def load(path: str | os.PathLike[str]) -> Profile:
    """Read and validate one profile file, gzip-compressed or raw."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise errors.AnalysisError(f"{p}: cannot read profile: {exc.strerror or exc}") from exc
    return parse(data, source=str(p))


def _gunzip(data: bytes, source: str) -> bytes:
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = d.decompress(data, MAX_UNCOMPRESSED_BYTES)
    except zlib.error as exc:
        raise errors.AnalysisError(f"{source}: not a valid gzip stream: {exc}") from exc
    if d.unconsumed_tail:
        raise errors.AnalysisError(
            f"{source}: decompresses to more than {MAX_UNCOMPRESSED_BYTES >> 20} MiB; not a profile")
    if not d.eof:
        raise errors.AnalysisError(f"{source}: gzip stream is truncated (download cut short?)")
    if d.unused_data:
        # Go's gzip reader would read a second member and pprof would then see two
        # profiles (errConcatProfile); any other trailing bytes are an error there too.
        what = ("concatenated profiles detected" if d.unused_data.startswith(GZIP_MAGIC)
                else "trailing garbage after the gzip stream")
        raise errors.AnalysisError(f"{source}: {what}")
    return raw


def looks_like_text(data: bytes) -> bool:
    """True for short printable text: a pprof error body rather than a profile."""
    head = data[:512]
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def parse(data: bytes, source: str = "<profile>") -> Profile:
    """Validate and reduce a serialized profile; raise AnalysisError naming ``source``."""
    if not data:
        raise errors.AnalysisError(f"{source}: empty file, not a profile")
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, source)
        if not data:
            raise errors.AnalysisError(f"{source}: gzip stream holds no data, not a profile")
    elif looks_like_text(data):
        raise errors.AnalysisError(
            f"{source}: holds text, not a profile: {errors.shorten(data.decode('utf-8'), 160)!r}")
    msg = profile_proto.Profile()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise errors.AnalysisError(f"{source}: not a pprof protobuf: {exc}") from exc
    return _reduce(msg, source)


def _reduce(msg: Any, source: str) -> Profile:
    def bad(what: str) -> errors.AnalysisError:
        return errors.AnalysisError(f"{source}: malformed profile: {what}")

    strings: list[str] = list(msg.string_table)
    if not strings or strings[0] != "":
        raise bad("string_table[0] must be the empty string")
    nstr = len(strings)

    def s(idx: int, what: str) -> str:
        if not 0 <= idx < nstr:
            raise bad(f"{what} refers to string {idx}, outside the string table (size {nstr})")
        return strings[idx]

    sample_types = [SampleType(s(vt.type, "sample_type.type"), s(vt.unit, "sample_type.unit"))
                    for vt in msg.sample_type]
    ntypes = len(sample_types)
    period_type = None
    if msg.HasField("period_type"):
        pt = msg.period_type
        period_type = SampleType(s(pt.type, "period_type.type"), s(pt.unit, "period_type.unit"))
    default_type = s(msg.default_sample_type, "default_sample_type")
    s(msg.drop_frames, "drop_frames")
    s(msg.keep_frames, "keep_frames")
    s(msg.doc_url, "doc_url")
    comments = [s(c, "comment") for c in msg.comment]

    mapping_files: dict[int, str] = {}
    for m in msg.mapping:
        if m.id == 0:
            raise bad("mapping with reserved id 0")
        if m.id in mapping_files:
            raise bad(f"multiple mappings with id {m.id}")
        mapping_files[m.id] = s(m.filename, "mapping.filename")
        s(m.build_id, "mapping.build_id")

    functions: dict[int, tuple[str, str]] = {}
    for f in msg.function:
        if f.id == 0:
            raise bad("function with reserved id 0")
        if f.id in functions:
            raise bad(f"multiple functions with id {f.id}")
        s(f.system_name, "function.system_name")
        functions[f.id] = (s(f.name, "function.name"), s(f.filename, "function.filename"))

    node_ids: dict[str, int] = {}
    node_names: list[str] = []
    node_files: list[str] = []
    inline_seen: dict[int, int] = {}  # bit 1: seen inlined, bit 2: seen as a real call
    loc_nodes: dict[int, tuple[int, ...]] = {}
    for loc in msg.location:
        if loc.id == 0:
            raise bad("location with reserved id 0")
        if loc.id in loc_nodes:
            raise bad(f"multiple locations with id {loc.id}")
        objfile = ""
        if loc.mapping_id:
            if loc.mapping_id not in mapping_files:
                raise bad(f"location {loc.id} refers to mapping {loc.mapping_id}, which does not exist")
            objfile = mapping_files[loc.mapping_id]
        lines = loc.line
        names: list[tuple[str, str]] = []
        for ln in lines:
            fid = ln.function_id
            if fid:
                if fid not in functions:
                    raise bad(f"location {loc.id} refers to function {fid}, which does not exist")
                names.append(functions[fid])
            else:
                names.append(("", ""))
        if not names:
            names.append(("", ""))
        ids = []
        last = len(names) - 1
        for i, (name, fname) in enumerate(names):
            if not name:
                # pprof's NodeInfo.PrintableName for a frame without a function name.
                name = f"[{os.path.basename(objfile)}]" if objfile else "<unknown>"
            nid = node_ids.get(name)
            if nid is None:
                nid = node_ids[name] = len(node_names)
                node_names.append(name)
                node_files.append(fname)
            ids.append(nid)
            inline_seen[nid] = inline_seen.get(nid, 0) | (1 if i < last else 2)
        loc_nodes[loc.id] = tuple(ids)

    stacks: list[tuple[int, ...]] = []
    values: list[tuple[int, ...]] = []
    if msg.sample and not ntypes:
        raise bad("missing sample type information")
    for smp in msg.sample:
        v = tuple(smp.value)
        if len(v) != ntypes:
            raise bad(f"sample has {len(v)} values for {ntypes} sample types")
        stacks.append(tuple(smp.location_id))
        values.append(v)
        if smp.label:
            for lb in smp.label:
                s(lb.key, "label.key")
                s(lb.str, "label.str")
                s(lb.num_unit, "label.num_unit")
    used = set(chain.from_iterable(set(stacks)))
    missing = used.difference(loc_nodes)
    if missing:
        raise bad(f"sample refers to location {min(missing)}, which does not exist")

    labels = {nid: ("(inline)" if bits == 1 else "(partial-inline)" if bits == 3 else "")
              for nid, bits in inline_seen.items()}
    return Profile(
        source=source, sample_types=sample_types, default_sample_type=default_type,
        duration_ns=msg.duration_nanos, time_ns=msg.time_nanos, period_type=period_type,
        period=msg.period, stacks=stacks, values=values, loc_nodes=loc_nodes,
        node_names=node_names, node_files=node_files, inline_label=labels, comments=comments)


# ---- sample index ----


def sample_index(profile: Profile, name: str | None = None) -> int:
    """pprof's SampleIndexByName: default type, else the last; a name or number picks one."""
    types = profile.sample_types
    if not name:
        if profile.default_sample_type:
            for i, t in enumerate(types):
                if t.type == profile.default_sample_type:
                    return i
        return len(types) - 1
    if name.lstrip("-").isdigit():
        i = int(name)
        if not 0 <= i < len(types):
            raise UnknownSampleTypeError(
                f"{profile.source}: sample index {i} is outside the range [0..{len(types) - 1}]")
        return i
    # pprof strips "inuse_" so the legacy -inuse_space flag matches old "space" types.
    no_inuse = name.removeprefix("inuse_")
    for i, t in enumerate(types):
        if t.type in (name, no_inuse):
            return i
    raise UnknownSampleTypeError(
        f"{profile.source}: sample type {name!r} must be one of: {', '.join(t.type for t in types)}")


def total(profile: Profile, index: int) -> int:
    """pprof's computeTotal: the sum of absolute sample values."""
    return sum(abs(v[index]) for v in profile.values)


# ---- stacks ----


def node_stacks(profile: Profile, index: int, names: dict[str, int] | None = None,
                sign: int = 1) -> Counter[NodeStack]:
    """Weights of identical node stacks (leaf first), zero-weight stacks dropped.

    With ``names``, node ids are translated into that shared table (extended as
    needed) so stacks of two profiles can be added, as for a diff.
    """
    by_loc: Counter[tuple[int, ...]] = Counter()
    for st, v in zip(profile.stacks, profile.values, strict=True):
        w = v[index]
        if w:
            by_loc[st] += w
    loc_nodes = profile.loc_nodes
    if names is not None:
        remap = [names.setdefault(n, len(names)) for n in profile.node_names]
        loc_nodes = {lid: tuple(remap[n] for n in ns) for lid, ns in loc_nodes.items()}
    out: Counter[NodeStack] = Counter()
    get = loc_nodes.__getitem__
    for st, w in by_loc.items():
        if w:
            out[tuple(chain.from_iterable(map(get, st)))] += w * sign
    return out


def flat_cum(stacks: Mapping[NodeStack, int], n_nodes: int) -> tuple[list[int], list[int], list[bool]]:
    """Flat and cum per node as pprof's newGraph computes them.

    Cum counts a node once per stack however often it recurses; flat goes to
    the innermost frame of the leaf location. The third list marks the nodes
    pprof keeps: it drops those whose flat and cum are both zero (selectNodesForGraph).
    """
    flat = [0] * n_nodes
    cum = [0] * n_nodes
    for st, w in stacks.items():
        if not st or not w:
            continue
        if len(st) == 1:
            cum[st[0]] += w
        else:
            for n in set(st):
                cum[n] += w
        flat[st[0]] += w
    present = [f != 0 or c != 0 for f, c in zip(flat, cum, strict=True)]
    return flat, cum, present


def _rows(names: list[str], flat: list[int], cum: list[int], present: list[bool], tot: int,
          node_fraction: float) -> list[TopRow]:
    nodes = [i for i, p in enumerate(present) if p]
    if node_fraction > 0:
        # pprof's cutoff is a fraction of the summed flat, not of the report total.
        cutoff = abs(int(float(sum(flat[i] for i in nodes)) * node_fraction))
        nodes = [i for i in nodes if abs(cum[i]) >= cutoff]
    # FlatNameOrder: |flat| desc, then printable name, then |cum| desc.
    nodes.sort(key=lambda i: (-abs(flat[i]), names[i], -abs(cum[i])))
    rows: list[TopRow] = []
    running = 0
    for i in nodes:
        running += flat[i]
        rows.append(TopRow(function=names[i], flat=flat[i], flat_pct=_pct(flat[i], tot),
                           sum_pct=_pct(running, tot), cum=cum[i], cum_pct=_pct(cum[i], tot)))
    return rows


def _pct(value: int, tot: int) -> float:
    # pprof prints |value/total|; keep the sign so a diff shows shrinkage.
    return 100.0 * value / tot if tot else 0.0


def top(profile: Profile, index: int | str | None = None, node_fraction: float = 0.0) -> TopReport:
    """``go tool pprof -top`` as data; node_fraction=PPROF_NODE_FRACTION drops nodes as pprof does."""
    idx = index if isinstance(index, int) else sample_index(profile, index)
    if idx < 0:
        return TopReport(sample_type="", unit="", total=0, duration_ns=profile.duration_ns, rows=[])
    stacks = node_stacks(profile, idx)
    flat, cum, present = flat_cum(stacks, len(profile.node_names))
    tot = total(profile, idx)
    st = profile.sample_types[idx]
    return TopReport(sample_type=st.type, unit=st.unit, total=tot, duration_ns=profile.duration_ns,
                     rows=_rows(profile.node_names, flat, cum, present, tot, node_fraction))


def compatible_index(base: Profile, new: Profile, index: str | None) -> tuple[int, int]:
    """Sample indices into (base, new) for a diff, checked as pprof's Merge does."""
    if base.period_type != new.period_type:
        raise errors.AnalysisError(
            f"cannot diff {new.source} against {base.source}: incompatible period types "
            f"{_vt(new.period_type)} and {_vt(base.period_type)}")
    common = [t for t in new.sample_types if t in base.sample_types]
    if not common:
        raise errors.AnalysisError(
            f"cannot diff {new.source} against {base.source}: no sample type in common "
            f"({', '.join(map(_vt, new.sample_types))} vs {', '.join(map(_vt, base.sample_types))})")
    ni = sample_index(new, index)
    if new.sample_types[ni] not in base.sample_types:
        raise UnknownSampleTypeError(
            f"{base.source}: has no sample type {_vt(new.sample_types[ni])} to diff against")
    return base.sample_types.index(new.sample_types[ni]), ni


def _vt(t: SampleType | None) -> str:
    return f"{t.type}/{t.unit}" if t else "none"


def diff(base: Profile, new: Profile, index: str | None = None, node_fraction: float = 0.0) -> TopReport:
    """``go tool pprof -top -diff_base BASE NEW``: NEW minus BASE, percentages of the base total."""
    bi, ni = compatible_index(base, new, index)
    names: dict[str, int] = {}
    stacks = node_stacks(new, ni, names)
    stacks.update(node_stacks(base, bi, names, sign=-1))  # Counter.update adds
    table = [""] * len(names)
    for n, i in names.items():
        table[i] = n
    flat, cum, present = flat_cum(stacks, len(table))
    base_total = total(base, bi)
    # computeTotal falls back to the whole merged profile when the base sums to 0.
    tot = base_total or (total(new, ni))
    st = new.sample_types[ni]
    return TopReport(sample_type=st.type, unit=st.unit, total=tot, duration_ns=new.duration_ns,
                     rows=_rows(table, flat, cum, present, tot, node_fraction))


def function_values(profile: Profile, index: int) -> dict[str, tuple[int, int]]:
    """(flat, cum) by function name, every node with a non-zero value."""
    stacks = node_stacks(profile, index)
    flat, cum, present = flat_cum(stacks, len(profile.node_names))
    return {profile.node_names[i]: (flat[i], cum[i]) for i, p in enumerate(present) if p}


# ---- formatting like pprof ----

_TIME_UNITS = [("ns", 1), ("us", 1000), ("ms", 1000**2), ("s", 1000**3), ("hrs", 3600 * 1000**3)]
_BYTE_UNITS = [("B", 1), ("kB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("TB", 1024**4)]


def pick_scale(unit: str, values: Iterable[int]) -> tuple[str, int]:
    """Suffix and divisor for the smallest non-zero value, as pprof's "minimum" output unit."""
    scale = _TIME_UNITS if unit in ("nanoseconds", "ns") else _BYTE_UNITS if unit in ("bytes", "B") else []
    if not scale:
        return "", 1
    nz = [abs(v) for v in values if v]
    smallest = min(nz) if nz else 0
    chosen = scale[0]
    for name, div in scale:
        if smallest >= div:
            chosen = (name, div)
    return chosen


def format_value(value: int, suffix: str, div: int) -> str:
    if value == 0:
        return "0"
    if div == 1:
        return f"{value}{suffix}"
    text = f"{value / div:.2f}".removesuffix(".00")
    return f"{text}{suffix}"


def format_pct(pct: float) -> str:
    ratio = abs(pct)
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{_go_g(ratio):>5}%"


def _go_g(x: float) -> str:
    # Go's %5.2g prints 0 as "0" and small values like 0.12 or 5e-05.
    if x == 0:
        return "0"
    text = f"{x:.2g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def render_top(report: TopReport, profile: Profile | None = None, limit: int | None = None) -> str:
    """Text like pprof's -top: a header, then aligned flat/flat%/sum%/cum/cum% columns."""
    rows = report["rows"] if limit is None else report["rows"][:limit]
    suffix, div = pick_scale(report["unit"], chain.from_iterable((r["flat"], r["cum"]) for r in rows))
    head = [f"Type: {report['sample_type']}"]
    if report["duration_ns"]:
        dur = report["duration_ns"]
        head.append(f"Duration: {format_value(dur, *pick_scale('ns', [dur]))}")
    shown = sum(r["flat"] for r in rows)
    head.append(f"Showing nodes accounting for {format_value(shown, suffix, div)}, "
                f"{format_pct(_pct(shown, report['total'])).strip()} of "
                f"{format_value(report['total'], suffix, div)} total")
    if limit is not None and len(report["rows"]) > limit:
        head.append(f"Showing top {limit} nodes out of {len(report['rows'])}")
    lines = head + [f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%"]
    labels = profile.inline_label if profile else {}
    index = {n: i for i, n in enumerate(profile.node_names)} if profile else {}
    for r in rows:
        inl = labels.get(index.get(r["function"], -1), "")
        lines.append(
            f"{format_value(r['flat'], suffix, div):>10} {format_pct(r['flat_pct'])} "
            f"{format_pct(r['sum_pct'])} {format_value(r['cum'], suffix, div):>10} "
            f"{format_pct(r['cum_pct'])}  {r['function']}{' ' + inl if inl else ''}")
    return "\n".join(lines) + "\n"
