"""Group a ``goroutine?debug=2`` text dump by state and top user frame.

Callers: :mod:`debugcap.analysis.bundle_reading` (dumps inside bundles) and the
``goroutines`` command of :mod:`debugcap.kubectl_plugin.commands.analyze`; the
table form is :func:`debugcap.analysis.rendering.text.render_dump`.

A dump can hold hundreds of thousands of goroutines (64 MB of text), so the
parser streams bytes line by line and keeps one small record per *group*,
never per goroutine. Format notes: shared/research/pprof.md §3.

A dump taken after Go 1.26's leak-detecting GC (``goroutineleak?debug=2``, or any dump while
its marks last) shows a goroutine the runtime proved blocked forever as ``[chan receive
(leaked)]``: its group keeps the state without the mark, so dumps compare across time, and
counts it in ``leaked``. :func:`leak_groups` reads the goroutineleak profile itself (debug=0).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypedDict

from debugcap import errors

if TYPE_CHECKING:  # the goroutines command reads text only: no protobuf import for it
    from debugcap.formats import pprof as pprof_format

# runtime/pprof.writeGoroutineStacks stops growing its buffer here and writes
# whatever fit, silently cutting the last goroutine.
GO_DUMP_LIMIT = 64 << 20

# A pool this large parked on one frame is worth a look; smaller groups are
# routinely worker pools. Judgement call, from the brief.
LEAK_SUSPECT_MIN = 50

_HEADER = re.compile(rb"^goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[(.*)\]:\s*$")
_MINUTES = re.compile(r"^(\d+) minutes$")
_LEAKED = " (leaked)"

# States in which a goroutine is doing something rather than parked.
_ACTIVE_STATES = frozenset({"running", "runnable", "syscall", "idle", "dead", "copystack", "preempted"})

UNAVAILABLE = "(stack unavailable)"


class GroupDict(TypedDict):
    state: str
    function: str
    count: int
    max_wait_minutes: int
    created_by: str
    suspect: bool
    leaked: int  # how many of them the runtime proved leaked (Go 1.26 goroutineleak)


class LeakGroupDict(TypedDict):
    """Goroutines of a goroutineleak profile with the same top user frame."""

    function: str
    count: int


class DumpDict(TypedDict):
    total: int
    truncated: bool
    groups: list[GroupDict]


class GroupChange(TypedDict):
    state: str
    function: str
    before: int
    after: int
    change: int


@dataclass
class _Group:
    count: int
    max_wait: int
    created_by: str
    leaked: int


def is_runtime_frame(func: bytes) -> bool:
    """Frames of the runtime itself, and its linkname shims such as sync.runtime_Semacquire.

    ``GOTRACEBACK=system`` dumps show them (runtime.gopark, runtime.chanrecv...);
    the default hides them, so skipping them gives the same top frame for both.
    """
    return (func.startswith((b"runtime.", b"internal/runtime/", b"runtime/internal/"))
            or b".runtime_" in func)


def _parse_bracket(inner: bytes) -> tuple[str, int, bool]:
    parts = inner.decode("utf-8", "replace").split(", ")
    state = parts[0].removesuffix(" (scan)")
    leaked = _LEAKED in state
    state = state.replace(_LEAKED, "")
    minutes = 0
    for part in parts[1:]:
        m = _MINUTES.match(part)
        if m:
            minutes = int(m.group(1))
    return state, minutes, leaked


def _frame_name(line: bytes) -> bytes:
    # "pkg.(*T).Method(0xc000..., {0x1, 0x2})" or "pkg.f(...)": the argument
    # list is the last parenthesised group and never contains "(".
    end = line.rfind(b"(")
    return line[:end] if end > 0 else line.rstrip()


def parse_dump(lines: Iterable[bytes]) -> DumpDict:
    """Summarise a dump given as byte lines (a binary file object works)."""
    groups: dict[tuple[str, str], _Group] = {}
    bracket_cache: dict[bytes, tuple[str, int, bool]] = {}
    total = 0
    nbytes = 0
    in_goroutine = False
    state = ""
    minutes = 0
    leaked = False
    top: bytes | None = None
    first: bytes | None = None
    created = b""
    last = b""

    def flush() -> None:
        func = top if top is not None else first
        name = func.decode("utf-8", "replace") if func is not None else UNAVAILABLE
        key = (state, name)
        g = groups.get(key)
        if g is None:
            groups[key] = _Group(1, minutes, created.decode("utf-8", "replace"), int(leaked))
        else:
            g.count += 1
            g.leaked += leaked
            if minutes > g.max_wait:
                g.max_wait = minutes
            if created and not g.created_by:
                g.created_by = created.decode("utf-8", "replace")

    for line in lines:
        nbytes += len(line)
        last = line
        if line[:1] == b"\t" or line == b"\n":
            continue
        if line.startswith(b"goroutine "):
            m = _HEADER.match(line)
            if m is None:
                continue
            if in_goroutine:
                flush()
            in_goroutine = True
            total += 1
            inner = m.group(2)
            parsed = bracket_cache.get(inner)
            if parsed is None:
                parsed = bracket_cache[inner] = _parse_bracket(inner)
            state, minutes, leaked = parsed
            top = first = None
            created = b""
        elif not in_goroutine:
            continue
        elif line.startswith(b"created by "):
            rest = line[11:].rstrip()
            cut = rest.find(b" in goroutine ")
            created = rest[:cut] if cut >= 0 else rest
        elif top is None and not line.startswith((b"...", b"[originating")):
            name = _frame_name(line)
            if first is None:
                first = name
            if not is_runtime_frame(name):
                top = name
    if in_goroutine:
        flush()

    # A cut dump ends mid-line or with a frame whose file:line never came, and
    # a dump that hit Go's buffer cap is exactly 64 MiB long.
    truncated = bool(total) and (nbytes >= GO_DUMP_LIMIT or not last.endswith(b"\n")
                                 or not (last.startswith(b"\t") or last == b"\n"))
    out = [
        GroupDict(state=st, function=fn, count=g.count, max_wait_minutes=g.max_wait,
                  created_by=g.created_by,
                  suspect=g.count >= LEAK_SUSPECT_MIN and st not in _ACTIVE_STATES, leaked=g.leaked)
        for (st, fn), g in groups.items()
    ]
    out.sort(key=lambda g: (-g["count"], g["state"], g["function"]))
    return DumpDict(total=total, truncated=truncated, groups=out)


def load_dump(path: str | os.PathLike[str]) -> DumpDict:
    """Summarise the dump file at ``path``."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return parse_stream(fh, str(p))
    except OSError as exc:
        raise errors.AnalysisError(f"{p}: cannot read goroutine dump: {exc.strerror or exc}") from exc


def parse_stream(fh: IO[bytes], source: str) -> DumpDict:
    """Summarise the dump read from ``fh``; reject what is not a debug=2 dump, naming ``source``."""
    head = fh.read(64 * 1024)
    if not head:
        raise errors.AnalysisError(f"{source}: empty file, not a goroutine dump")
    if not head.lstrip().startswith(b"goroutine "):
        if head.startswith(b"\x1f\x8b"):
            raise errors.AnalysisError(
                f"{source}: is gzip data (a debug=0 goroutine profile?), not a debug=2 text dump")
        raise errors.AnalysisError(
            f"{source}: not a goroutine?debug=2 dump: "
            f"{errors.shorten(head[:200].decode('utf-8', 'replace'), 120)!r}")

    # Hand the sniffed head back as lines; the file object continues after it.
    parts = head.split(b"\n")
    pieces = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        pieces.append(parts[-1] + fh.readline())
    return parse_dump(chain(pieces, fh))


def suspects(dump: DumpDict) -> list[GroupDict]:
    """Groups large enough, and parked, to look like a leak (see LEAK_SUSPECT_MIN)."""
    return [g for g in dump["groups"] if g["suspect"]]


def leaked(dump: DumpDict) -> list[GroupDict]:
    """Groups with goroutines the runtime proved leaked (a dump taken after its leak check)."""
    return [g for g in dump["groups"] if g["leaked"]]


def leak_groups(profile: pprof_format.Profile) -> list[LeakGroupDict]:
    """A goroutineleak profile (debug=0) by top user frame, most goroutines first."""
    counts: dict[str, int] = {}
    for stack, values in zip(profile.stacks, profile.values, strict=True):
        names = [profile.node_names[n] for loc in stack for n in profile.loc_nodes[loc]]
        user = next((n for n in names if not is_runtime_frame(n.encode())), names[0] if names else UNAVAILABLE)
        counts[user] = counts.get(user, 0) + (values[0] if values else 0)
    out = [LeakGroupDict(function=f, count=c) for f, c in counts.items() if c]
    out.sort(key=lambda g: (-g["count"], g["function"]))
    return out


def diff_groups(before: DumpDict, after: DumpDict) -> list[GroupChange]:
    """Count change per (state, function) group, largest change first; unchanged groups left out."""
    a = {(g["state"], g["function"]): g["count"] for g in before["groups"]}
    b = {(g["state"], g["function"]): g["count"] for g in after["groups"]}
    out = [GroupChange(state=k[0], function=k[1], before=a.get(k, 0), after=b.get(k, 0),
                       change=b.get(k, 0) - a.get(k, 0))
           for k in a.keys() | b.keys() if a.get(k, 0) != b.get(k, 0)]
    out.sort(key=lambda c: (-abs(c["change"]), -c["change"], c["state"], c["function"]))
    return out
