"""Flame graphs of pprof profiles: pruned call trees, and their difference between two profiles.

Callers: :mod:`debugcap.analysis.report` builds them while it reads a bundle;
:mod:`debugcap.analysis.rendering.html` draws them (with ``assets/flamegraph.js``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from debugcap.analysis import pprof
from debugcap.formats import pprof as pprof_format

# Frames narrower than this share of the total are left out: they are
# invisible anyway and large profiles expand to ~425k tree nodes (research §5).
MIN_FRACTION = 0.001


@dataclass(frozen=True)
class Flame:
    """One flame graph: a pruned call tree, root first. ``diff`` trees carry base values too."""

    title: str
    unit: str
    total: int
    names: list[str]
    root: list[Any]  # [name index, value, base value, [children]]
    diff: bool = False


def _tree(new: Counter[pprof.NodeStack], base: Counter[pprof.NodeStack] | None, names: list[str],
          title: str, unit: str) -> Flame:
    # Node: [name, value, base, children-dict]; the dicts become lists when pruning.
    root: list[Any] = [-1, 0, 0, {}]
    sides: list[tuple[int, Counter[pprof.NodeStack]]] = [(1, new), (2, base or Counter())]
    for slot, stacks in sides:
        for st, w in stacks.items():
            w = abs(w)
            node = root
            node[slot] += w
            for nid in reversed(st):
                children = node[3]
                child = children.get(nid)
                if child is None:
                    child = children[nid] = [nid, 0, 0, {}]
                child[slot] += w
                node = child
    width = root[1] + root[2]
    limit = width * MIN_FRACTION
    used: dict[int, int] = {}

    def prune(node: list[Any]) -> list[Any]:
        kids = [prune(c) for c in node[3].values() if c[1] + c[2] >= limit]
        kids.sort(key=lambda c: names[c[0]])
        nid = node[0]
        if nid >= 0 and nid not in used:
            used[nid] = len(used)
        return [used.get(nid, -1), node[1], node[2], kids]

    pruned = prune(root)
    table = [""] * len(used)
    for nid, i in used.items():
        table[i] = names[nid]
    return Flame(title=title, unit=unit, total=root[1] if base is None else root[2], names=table,
                 root=pruned, diff=base is not None)


def profile_flame(profile: pprof_format.Profile, title: str, index: str | None = None) -> Flame:
    idx = pprof.sample_index(profile, index)
    if idx < 0:
        return Flame(title=title, unit="", total=0, names=[], root=[-1, 0, 0, []])
    stacks = pprof.node_stacks(profile, idx)
    return _tree(stacks, None, profile.node_names, f"{title} ({profile.sample_types[idx].type})",
                 profile.sample_types[idx].unit)


def diff_flame(base: pprof_format.Profile, new: pprof_format.Profile, title: str,
               index: str | None = None) -> Flame:
    bi, ni = pprof.compatible_index(base, new, index)
    names: dict[str, int] = {}
    a = pprof.node_stacks(new, ni, names)
    b = pprof.node_stacks(base, bi, names)
    table = [""] * len(names)
    for n, i in names.items():
        table[i] = n
    return _tree(a, b, table, f"{title} ({new.sample_types[ni].type}, red = grew)",
                 new.sample_types[ni].unit)


def flame_json(flame: Flame) -> dict[str, Any]:
    """The JSON the page's script reads for one flame graph."""
    return {"title": flame.title, "unit": flame.unit, "total": flame.total, "names": flame.names,
            "root": flame.root, "diff": flame.diff}
