"""Summarise pprof profiles exactly as ``go tool pprof -top`` and ``-diff_base`` do.

Callers: :mod:`debugcap.analysis.report`, :mod:`debugcap.analysis.flames`,
:mod:`debugcap.analysis.rendering` and the ``top``/``diff`` commands of
:mod:`debugcap.kubectl_plugin.commands.analyze`. Profiles are read by
:mod:`debugcap.formats.pprof`; the text form of a top is in
:mod:`debugcap.analysis.rendering.pprof_text`.

The algorithms mirror google/pprof (``internal/graph/graph.go`` ``newGraph``,
``internal/report/report.go`` ``computeTotal``, ``profile/index.go``
``SampleIndexByName``, ``Nodes.Sort(FlatNameOrder)``) at pprof's default
"functions" granularity; see shared/research/pprof.md §3. A diff chooses its sample
type as ``-diff_base`` does, from the merged profile (``profile/merge.go``
``CompatibilizeSampleTypes`` and ``combineHeaders``). :class:`Table` carries what
``-top`` prints above its rows (``internal/report/report.go`` ``ProfileLabels`` and
``reportLabels``). Tests compare every row, and the text line by line, with the real tool.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TypedDict

from google.protobuf.message import DecodeError

from debugcap import errors
from debugcap.formats import pprof as pprof_format
from debugcap.formats import pprof_proto

# pprof's default -nodefraction and -edgefraction (internal/driver/config.go).
PPROF_NODE_FRACTION = 0.005
PPROF_EDGE_FRACTION = 0.001

# A stack of node ids, leaf first (pprof's Sample.location_id order, with
# inlined frames expanded innermost first).
NodeStack = tuple[int, ...]


class UnknownSampleTypeError(errors.AnalysisError):
    """The requested sample index names no sample type of the profile."""


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


# ---- sample index ----


def sample_index(profile: pprof_format.Profile, name: str | None = None) -> int:
    """pprof's SampleIndexByName: default type, else the last; a name or number picks one."""
    return _index_by_name(profile.sample_types, profile.default_sample_type, name, profile.source)


def _index_by_name(types: Sequence[pprof_format.SampleType], default: str, name: str | None, source: str) -> int:
    if not name:
        if default:
            for i, t in enumerate(types):
                if t.type == default:
                    return i
        return len(types) - 1
    if name.lstrip("-").isdigit():
        i = int(name)
        if not 0 <= i < len(types):
            raise UnknownSampleTypeError(
                f"{source}: sample index {i} is outside the range [0..{len(types) - 1}]")
        return i
    # pprof strips "inuse_" so the legacy -inuse_space flag matches old "space" types.
    no_inuse = name.removeprefix("inuse_")
    for i, t in enumerate(types):
        if t.type in (name, no_inuse):
            return i
    raise UnknownSampleTypeError(
        f"{source}: sample type {name!r} must be one of: {', '.join(t.type for t in types)}")


def total(profile: pprof_format.Profile, index: int) -> int:
    """pprof's computeTotal: the sum of absolute sample values."""
    return sum(abs(v[index]) for v in profile.values)


# ---- stacks ----


def node_stacks(profile: pprof_format.Profile, index: int, names: dict[str, int] | None = None,
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


def _select(names: list[str], flat: list[int], cum: list[int], present: list[bool],
            node_fraction: float) -> tuple[list[int], int]:
    """The nodes pprof shows, in its order, and how many it dropped under the node fraction."""
    nodes = [i for i, p in enumerate(present) if p]
    before = len(nodes)
    if node_fraction > 0:
        # pprof's cutoff is a fraction of the summed flat, not of the report total.
        cutoff = abs(int(float(sum(flat[i] for i in nodes)) * node_fraction))
        nodes = [i for i in nodes if abs(cum[i]) >= cutoff]
    # FlatNameOrder: |flat| desc, then printable name, then |cum| desc.
    nodes.sort(key=lambda i: (-abs(flat[i]), names[i], -abs(cum[i])))
    return nodes, before - len(nodes)


def _rows(names: list[str], flat: list[int], cum: list[int], nodes: list[int], tot: int) -> list[TopRow]:
    rows: list[TopRow] = []
    running = 0
    for i in nodes:
        running += flat[i]
        rows.append(TopRow(function=names[i], flat=flat[i], flat_pct=pct(flat[i], tot),
                           sum_pct=pct(running, tot), cum=cum[i], cum_pct=pct(cum[i], tot)))
    return rows


def pct(value: int, tot: int) -> float:
    """``value`` as a percentage of ``tot``, 0 for an empty total."""
    # pprof prints |value/total|; keep the sign so a diff shows shrinkage.
    return 100.0 * value / tot if tot else 0.0


@dataclass(frozen=True)
class Labels:
    """What ``go tool pprof`` prints above a table that the rows do not say (its ProfileLabels)."""

    file: str = ""  # base name of the first mapping's file: the main binary
    build_id: str = ""
    mapped: bool = False  # the profile has mappings: a diff takes file and build id from the first that has
    comments: tuple[str, ...] = ()
    doc_url: str = ""
    time_ns: int = 0
    duration_ns: int = 0


def labels(data: bytes, source: str = "<profile>") -> Labels:
    """The header facts of a serialized profile, which :mod:`debugcap.formats.pprof` does not keep.

    Decodes the profile a second time; call it after :func:`debugcap.formats.pprof.parse`
    accepted the same bytes, which also bounds what the gzip stream may inflate to.
    """
    try:
        if data.startswith(pprof_format.GZIP_MAGIC):
            data = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data, pprof_format.MAX_UNCOMPRESSED_BYTES)
        msg = pprof_proto.Profile()
        msg.ParseFromString(data)
    except (zlib.error, DecodeError, RuntimeError, ValueError) as exc:
        raise errors.AnalysisError(f"{source}: not a pprof protobuf: {exc}") from exc
    strings = list(msg.string_table)

    def s(i: int) -> str:
        return strings[i] if 0 <= i < len(strings) else ""

    first = msg.mapping[0] if msg.mapping else None
    file = s(first.filename) if first else ""
    # Go's filepath.Base: trailing slashes go first.
    return Labels(file=(file.rstrip("/").rsplit("/", 1)[-1] or "/") if file else "",
                  build_id=s(first.build_id) if first else "", mapped=first is not None,
                  comments=tuple(s(c) for c in msg.comment), doc_url=s(msg.doc_url),
                  time_ns=msg.time_nanos, duration_ns=msg.duration_nanos)


def merged_labels(new: Labels, base: Labels) -> Labels:
    """The labels of the profile pprof's -diff_base merges NEW and BASE into (combineHeaders)."""
    time_ns = 0
    for t in (new.time_ns, base.time_ns):
        # As pprof: the earliest, except that a first zero is replaced and a later zero wins.
        if time_ns == 0 or t < time_ns:
            time_ns = t
    mapped = new if new.mapped or not base.mapped else base
    return Labels(file=mapped.file, build_id=mapped.build_id, mapped=mapped.mapped,
                  comments=tuple(dict.fromkeys(new.comments + base.comments)),
                  doc_url=new.doc_url or base.doc_url, time_ns=time_ns,
                  duration_ns=new.duration_ns + base.duration_ns)


@dataclass(frozen=True)
class Table:
    """A top as ``go tool pprof -top`` prints it: its rows cut to the node count, and its header."""

    report: TopReport  # rows already cut to ``limit``
    labels: Labels = field(default_factory=Labels)
    kept: int = 0  # nodes above the node-fraction cutoff ("Showing top N nodes out of <kept>")
    dropped: int = 0  # nodes under it ("Dropped <dropped> nodes")
    node_fraction: float = 0.0
    limit: int | None = None
    inline: Mapping[str, str] = field(default_factory=dict)  # "(inline)"/"(partial-inline)" by function


def _edges(profile: pprof_format.Profile, index: int, shown: set[int], remap: Sequence[int] | None, sign: int,
           edges: dict[tuple[int, int], list[int]]) -> None:
    """pprof's graph edges among the shown nodes: (caller, callee) -> [weight, inlined every time].

    pprof builds the graph it prints from the shown nodes only: a caller left out is skipped
    over, to the nearest shown one. An edge is inline when every sample through it had the
    callee inlined into the caller's location.
    """
    weights: Counter[tuple[int, ...]] = Counter()
    for st, v in zip(profile.stacks, profile.values, strict=True):
        if v[index]:
            weights[st] += v[index] * sign
    for st, w in weights.items():
        seen: set[tuple[int, int]] = set()
        parent = -1
        for loc in reversed(st):
            nodes = profile.loc_nodes[loc]
            last = len(nodes) - 1
            for pos in range(last, -1, -1):  # outermost frame of a location first; the inner ones are inlined
                n = nodes[pos] if remap is None else remap[nodes[pos]]
                if n not in shown:
                    continue
                if parent >= 0 and n != parent and (parent, n) not in seen:
                    seen.add((parent, n))
                    edge = edges.setdefault((parent, n), [0, 1])
                    edge[0] += w
                    edge[1] &= pos != last
                parent = n


def _inline_labels(names: Sequence[str], edges: Mapping[tuple[int, int], list[int]], flat: Sequence[int],
                   present: Sequence[bool]) -> dict[str, str]:
    """"(inline)" or "(partial-inline)" per node, from the edges into it that pprof keeps.

    pprof drops the edges lighter than -edgefraction (0.001) of the summed flat before it labels
    the rows: a node entered only through those gets no label.
    """
    cutoff = abs(int(float(sum(f for f, p in zip(flat, present, strict=True) if p)) * PPROF_EDGE_FRACTION))
    kinds: dict[int, int] = {}
    for (_, callee), (weight, inline) in edges.items():
        if abs(weight) >= cutoff:
            kinds[callee] = kinds.get(callee, 0) | (1 if inline else 2)
    return {names[n]: "(inline)" if k == 1 else "(partial-inline)" for n, k in kinds.items() if k != 2}


def _limited(nodes: list[int], limit: int | None) -> list[int]:
    return nodes if limit is None else nodes[:limit]


def top(profile: pprof_format.Profile, index: int | str | None = None,
        node_fraction: float = 0.0) -> TopReport:
    """``go tool pprof -top`` as data; node_fraction=PPROF_NODE_FRACTION drops nodes as pprof does."""
    return top_table(profile, Labels(), index, node_fraction, with_inline=False).report


def top_table(profile: pprof_format.Profile, head: Labels, index: int | str | None = None,
              node_fraction: float = 0.0, limit: int | None = None, *, with_inline: bool = True) -> Table:
    """``go tool pprof -top [-nodecount=limit]``: the rows and what the text prints above them.

    ``with_inline=False`` spares the pass over the samples that the inline marks take.
    """
    idx = index if isinstance(index, int) else sample_index(profile, index)
    if idx < 0:
        return Table(TopReport(sample_type="", unit="", total=0, duration_ns=profile.duration_ns, rows=[]), head)
    stacks = node_stacks(profile, idx)
    flat, cum, present = flat_cum(stacks, len(profile.node_names))
    tot = total(profile, idx)
    st = profile.sample_types[idx]
    nodes, dropped = _select(profile.node_names, flat, cum, present, node_fraction)
    shown = _limited(nodes, limit)
    edges: dict[tuple[int, int], list[int]] = {}
    if with_inline:
        _edges(profile, idx, set(shown), None, 1, edges)
    rep = TopReport(sample_type=st.type, unit=st.unit, total=tot, duration_ns=profile.duration_ns,
                    rows=_rows(profile.node_names, flat, cum, shown, tot))
    return Table(rep, head, len(nodes), dropped, node_fraction, limit,
                 _inline_labels(profile.node_names, edges, flat, present))


def compatible_index(base: pprof_format.Profile, new: pprof_format.Profile,
                     index: str | None) -> tuple[int, int]:
    """Sample indices into (base, new) for a diff, chosen and checked as pprof's merge does.

    pprof merges NEW and BASE into one profile whose sample types are those both have, in NEW's
    order, and picks from that list: a number counts in it, and without a name the default is
    the first of NEW's then BASE's default sample types (``allocs`` says ``alloc_space``, ``heap``
    says nothing: a heap profile diffed against an allocs one compares alloc_space).
    """
    if base.period_type != new.period_type:
        raise errors.AnalysisError(
            f"cannot diff {new.source} against {base.source}: incompatible period types "
            f"{_vt(new.period_type)} and {_vt(base.period_type)}")
    common = [t for t in new.sample_types if t in base.sample_types]
    if not common:
        raise errors.AnalysisError(
            f"cannot diff {new.source} against {base.source}: no sample type in common "
            f"({', '.join(map(_vt, new.sample_types))} vs {', '.join(map(_vt, base.sample_types))})")
    default = _merged_default(new, common) or _merged_default(base, common)
    chosen = common[_index_by_name(common, default, index, f"{new.source} against {base.source}")]
    return base.sample_types.index(chosen), new.sample_types.index(chosen)


def _merged_default(profile: pprof_format.Profile, common: list[pprof_format.SampleType]) -> str:
    # compatibilizeSampleTypes leaves a profile whose types are already the common list as it is
    # (an empty default stays empty); another one's default becomes the first common type unless
    # its own is among them.
    names = [t.type for t in common]
    if [t.type for t in profile.sample_types] == names:
        return profile.default_sample_type
    return profile.default_sample_type if profile.default_sample_type in names else names[0]


def _vt(t: pprof_format.SampleType | None) -> str:
    return f"{t.type}/{t.unit}" if t else "none"


def diff(base: pprof_format.Profile, new: pprof_format.Profile, index: str | None = None,
         node_fraction: float = 0.0) -> TopReport:
    """``go tool pprof -top -diff_base BASE NEW``: NEW minus BASE, percentages of the base total."""
    return diff_table(base, new, Labels(), index, node_fraction, with_inline=False).report


def diff_table(base: pprof_format.Profile, new: pprof_format.Profile, head: Labels, index: str | None = None,
               node_fraction: float = 0.0, limit: int | None = None, *, with_inline: bool = True) -> Table:
    """:func:`diff` with what the text prints above it; ``head`` is :func:`merged_labels` of the two."""
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
    nodes, dropped = _select(table, flat, cum, present, node_fraction)
    shown = _limited(nodes, limit)
    edges: dict[tuple[int, int], list[int]] = {}
    for prof, idx, sign in ((new, ni, 1), (base, bi, -1)) if with_inline else ():
        _edges(prof, idx, set(shown), [names[n] for n in prof.node_names], sign, edges)
    st = new.sample_types[ni]
    rep = TopReport(sample_type=st.type, unit=st.unit, total=tot, duration_ns=new.duration_ns + base.duration_ns,
                    rows=_rows(table, flat, cum, shown, tot))
    return Table(rep, head, len(nodes), dropped, node_fraction, limit, _inline_labels(table, edges, flat, present))
