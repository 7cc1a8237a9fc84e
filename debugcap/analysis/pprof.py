"""Summarise pprof profiles exactly as ``go tool pprof -top`` and ``-diff_base`` do.

Callers: :mod:`debugcap.analysis.report`, :mod:`debugcap.analysis.flames`,
:mod:`debugcap.analysis.rendering` and the ``top``/``diff`` commands of
:mod:`debugcap.kubectl_plugin.commands.analyze`. Profiles are read by
:mod:`debugcap.formats.pprof`; the text form of a top is in
:mod:`debugcap.analysis.rendering.pprof_text`.

The algorithms mirror google/pprof (``internal/graph/graph.go`` ``newGraph``,
``internal/report/report.go`` ``computeTotal``, ``profile/index.go``
``SampleIndexByName``, ``Nodes.Sort(FlatNameOrder)``) at pprof's default
"functions" granularity; see shared/research/pprof.md §3. Tests compare every
row with the real tool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import chain
from typing import TypedDict

from debugcap import errors
from debugcap.formats import pprof as pprof_format

# pprof's default -nodefraction (internal/driver/config.go).
PPROF_NODE_FRACTION = 0.005

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
        rows.append(TopRow(function=names[i], flat=flat[i], flat_pct=pct(flat[i], tot),
                           sum_pct=pct(running, tot), cum=cum[i], cum_pct=pct(cum[i], tot)))
    return rows


def pct(value: int, tot: int) -> float:
    """``value`` as a percentage of ``tot``, 0 for an empty total."""
    # pprof prints |value/total|; keep the sign so a diff shows shrinkage.
    return 100.0 * value / tot if tot else 0.0


def top(profile: pprof_format.Profile, index: int | str | None = None,
        node_fraction: float = 0.0) -> TopReport:
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


def compatible_index(base: pprof_format.Profile, new: pprof_format.Profile,
                     index: str | None) -> tuple[int, int]:
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


def _vt(t: pprof_format.SampleType | None) -> str:
    return f"{t.type}/{t.unit}" if t else "none"


def diff(base: pprof_format.Profile, new: pprof_format.Profile, index: str | None = None,
         node_fraction: float = 0.0) -> TopReport:
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
