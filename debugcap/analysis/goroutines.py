"""Group a goroutine dump (``goroutine?debug=2`` or ``debug=1``) by state and application frame.

Callers: :mod:`debugcap.analysis.bundle_reading` (dumps inside bundles) and the
``goroutines`` command of :mod:`debugcap.kubectl_plugin.commands.analyze`; the
table form is :func:`debugcap.analysis.rendering.text.render_dump`.

A goroutine is grouped by its state (the wait reason: ``sync.Mutex.Lock``, ``chan receive``...)
and the application frame it waits in: the first frame of the program's own code, as
:mod:`debugcap.analysis.appcode` decides (not the runtime's, the standard library's or a
dependency's). So goroutines queued on a lock in ``main.lockedUpdate`` form one group named
``main.lockedUpdate``, not ``sync.(*Mutex).lockSlow``, and one sleeping in ``main.poll`` does
not join those sleeping elsewhere under ``time.Sleep``. A stack without own code is named by
its first frame outside the runtime. A goroutine of the capture's own machinery (a pprof handler
serving a profile, even under the application's middleware; the tracer's reader) is named by its
outermost profiler frame (``net/http/pprof.Index``, :meth:`appcode.Code.charge`) and is never a
leak suspect; nor is a debug=1 group, whose state is unknown: a pool of busy workers and a leak
look the same there.

A dump can hold hundreds of thousands of goroutines (64 MB of text), so the parser streams
bytes line by line and keeps one small record per distinct (state, stack), never per goroutine;
which frames are the program's own is decided once the whole file has been read, from every
function and file it names. :func:`read_stream` gives those records (:class:`Stack`) with the
summary, so :func:`debugcap.analysis.attribution.waiting` reads the same parse the groups come
from. Format notes: shared/research/pprof.md §3.

- debug=2 (``runtime.Stack``): ``goroutine N [state, M minutes]:``, then ``func(args)`` and
  ``\\tfile:line +0x..`` line pairs, and ``created by``. Go's ``writeGoroutineStacks`` stops at a
  64 MiB buffer: a dump of exactly that size is *truncated* and its counts are low. The runtime's
  own dump (SIGQUIT, a crash) is read too: with ``GOTRACEBACK=system`` its headers carry
  ``gp= m=`` and its file lines end in `` fp=.. sp=.. pc=..`` (``runtime.Stack`` never writes those).
- debug=1 (``printCountProfile``): ``goroutine profile: total N``, then per distinct stack
  ``K @ 0x.. 0x..`` and ``#\\t0x..\\tfunc+0x..\\tfile:line`` frames. No states or wait times; the
  header's total is exact.

Any other dump that ends inside a goroutine was *cut* (a download or copy that stopped early):
:data:`DumpDict` says where, and :mod:`debugcap.analysis.hints` which of the two it was.

A dump taken after Go 1.26's leak-detecting GC (``goroutineleak?debug=2``, or any dump while
its marks last) shows a goroutine the runtime proved blocked forever as ``[chan receive
(leaked)]``: its group keeps the state without the mark, so dumps compare across time, and
counts it in ``leaked``. :func:`leak_groups` reads the goroutineleak profile itself (debug=0).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypedDict

from debugcap import errors
from debugcap.analysis import appcode

if TYPE_CHECKING:  # the goroutines command reads text only: no protobuf import for it
    from debugcap.formats import pprof as pprof_format

# runtime/pprof.writeGoroutineStacks grows its buffer up to 64 MiB and writes whatever fit:
# a debug=2 dump this size exactly was cut there, in the middle of a goroutine.
GO_DUMP_LIMIT = 64 << 20
# The longest line read (a frame with its arguments, a header, labels: at most a few kB in Go's dumps);
# past it the dump is refused rather than a hostile one-line file read whole.
LINE_MAX = 1 << 20

# A pool this large parked on one frame is worth a look; smaller groups are
# routinely worker pools. Judgement call, from the brief.
LEAK_SUSPECT_MIN = 50

_HEADER = re.compile(rb"^goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[(.*)\]:\s*$")
_COUNT_HEADER = re.compile(rb"^(goroutine|goroutineleak) profile: total (\d+)\s*$")
_COUNT_LINE = re.compile(rb"^(\d+) @(?: 0x[0-9a-f]+)*\s*$")
_MINUTES = re.compile(r"^(\d+) minutes$")
_LEAKED = " (leaked)"

# States in which a goroutine is doing something rather than parked.
_ACTIVE_STATES = frozenset({"running", "runnable", "syscall", "idle", "dead", "copystack", "preempted"})

UNAVAILABLE = "(stack unavailable)"


class GroupDict(TypedDict):
    state: str  # "" in a debug=1 dump, which has none
    function: str  # the first frame of the program's own code, else the first outside the runtime
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
    truncated: bool  # cut at Go's 64 MiB limit for debug=2 dumps: the goroutines past it are missing
    cut: str  # where a dump not written whole ends ("" when it ends where a dump ends)
    format: str  # "debug=2" or "debug=1"
    groups: list[GroupDict]


class GroupChange(TypedDict):
    state: str
    function: str
    before: int
    after: int
    change: int


@dataclass(frozen=True)
class Stack:
    """Goroutines of one dump with one state and one stack: what groups and ``waiting`` are made of."""

    state: str  # "" in a debug=1 dump, which has none
    frames: tuple[appcode.Frame, ...]  # (function, file) leaf first; file "" when the dump gave none
    count: int
    max_wait_minutes: int
    created_by: str
    leaked: int


@dataclass(frozen=True)
class Dump:
    """One parse of a dump: its summary (the ``goroutines`` command's payload) and its stacks."""

    summary: DumpDict
    stacks: tuple[Stack, ...]
    code: appcode.Code  # the program's own code, as the dump's functions and files tell it


@dataclass(frozen=True)
class Charge:
    """Where one stack's goroutines are counted: :func:`charge`."""

    function: str  # the first own frame; else the outermost profiler frame; else the first outside the runtime
    own: bool
    profiler: bool  # the capture's own machinery (a pprof handler, the tracer): never the application's
    parked_in: str  # the first frame outside the runtime: where the goroutines wait, as context


@dataclass
class _Stack:
    """Goroutines with one state and one stack (function names, leaf first), while parsing."""

    count: int = 0
    max_wait: int = 0
    created_by: bytes = b""
    leaked: int = 0


@dataclass
class _Parsed:
    stacks: dict[tuple[str, tuple[bytes, ...]], _Stack] = field(default_factory=dict)
    files: dict[bytes, bytes] = field(default_factory=dict)  # function -> its file, as first seen
    total: int = 0
    cut: str = ""

    def add(self, state: str, frames: list[bytes], count: int, minutes: int, created: bytes, leaked: int) -> None:
        st = self.stacks.setdefault((state, tuple(frames)), _Stack())
        st.count += count
        st.leaked += leaked
        st.max_wait = max(st.max_wait, minutes)
        if created and not st.created_by:
            st.created_by = created


def is_runtime_frame(func: str) -> bool:
    """Frames of the runtime itself, and its linkname shims such as sync.runtime_Semacquire.

    ``GOTRACEBACK=system`` dumps show them (runtime.gopark, runtime.chanrecv...);
    the default hides them, so skipping them gives the same top frame for both.
    """
    return func.startswith(("runtime.", "internal/runtime/", "runtime/internal/")) or ".runtime_" in func


def charge(frames: tuple[appcode.Frame, ...], code: appcode.Code) -> Charge:
    """The function a stack's goroutines are counted under, as groups and ``waiting`` both count them."""
    own, profiler = code.charge(frames)
    parked = next((fn for fn, _ in frames if not is_runtime_frame(fn)), frames[0][0] if frames else UNAVAILABLE)
    if profiler is not None:
        return Charge(profiler, False, True, parked)
    if own is not None:
        return Charge(frames[own][0], True, False, parked)
    return Charge(parked, False, False, parked)


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


def _file_of(line: bytes) -> bytes:
    """``\\t/app/main.go:10 +0x1d`` (``fp=.. sp=.. pc=..`` after it with GOTRACEBACK=system) -> ``/app/main.go``."""
    text = line.strip()
    cut = text.find(b" +0x")
    if cut < 0:
        cut = text.find(b" fp=")  # a frame called at its entry has no offset, only the system form's tail
    if cut >= 0:
        text = text[:cut]
    colon = text.rfind(b":")
    return text[:colon] if colon > 0 else text


def _parse_debug2(lines: Iterable[bytes]) -> tuple[_Parsed, int]:  # long: the per-line loop of a 64 MB dump
    """Every goroutine of a debug=2 dump into records per (state, stack); and the bytes read."""
    out = _Parsed()
    bracket_cache: dict[bytes, tuple[str, int, bool]] = {}
    nbytes = 0
    goid = b""
    state, minutes, leaked = "", 0, False
    frames: list[bytes] = []
    created = b""
    awaiting_file: bytes | None = None  # the function whose "\tfile:line" comes next
    last = b""
    for line in lines:
        nbytes += len(line)
        last = line
        if line[:1] == b"\t":
            if awaiting_file is not None and awaiting_file not in out.files:
                out.files[awaiting_file] = _file_of(line)
            awaiting_file = None
            continue
        if line == b"\n":
            continue
        if line.startswith(b"goroutine "):
            m = _HEADER.match(line)
            if m is None:
                continue
            if goid:
                out.add(state, frames, 1, minutes, created, int(leaked))
            goid = m.group(1)
            out.total += 1
            inner = m.group(2)
            parsed = bracket_cache.get(inner)
            if parsed is None:
                parsed = bracket_cache[inner] = _parse_bracket(inner)
            state, minutes, leaked = parsed
            frames, created, awaiting_file = [], b"", None
        elif not goid:
            continue
        elif line.startswith(b"created by "):
            rest = line[11:].rstrip()
            cut = rest.find(b" in goroutine ")
            created = rest[:cut] if cut >= 0 else rest
            awaiting_file = None
        elif line.startswith((b"...", b"[originating")):
            awaiting_file = None
        else:
            name = _frame_name(line)
            frames.append(name)
            awaiting_file = name
    if goid:
        out.add(state, frames, 1, minutes, created, int(leaked))
        # A whole dump ends with a frame's "\tfile:line" (or a blank line); a cut one inside a line,
        # or on a function, header or "created by" line whose file never came.
        if not (last.endswith(b"\n") and (last[:1] == b"\t" or last == b"\n")):
            out.cut = f"the file ends inside goroutine {goid.decode()}'s stack, after {nbytes} bytes"
    return out, nbytes


def _parse_debug1(lines: Iterable[bytes], header: re.Match[bytes]) -> _Parsed:
    """Every record of a debug=1 count profile into records per stack; the header's total is exact."""
    out = _Parsed()
    leak_profile = header.group(1) == b"goroutineleak"
    counted, count, frames = 0, 0, []
    last, nbytes = b"", 0
    for line in lines:
        nbytes += len(line)
        last = line
        if line.startswith(b"#"):
            # "#\t0x4a1b2c\tmain.f+0x2c\t/app/main.go:10", tab-padded by text/tabwriter.
            fields = [f for f in line.rstrip(b"\n").split(b"\t") if f]
            if len(fields) >= 3 and fields[1] != b"labels:" and count:
                name = fields[2].rsplit(b"+0x", 1)[0]
                frames.append(name)
                if name not in out.files and len(fields) >= 4:
                    out.files[name] = fields[3].rsplit(b":", 1)[0]
            continue
        m = _COUNT_LINE.match(line)
        if m is None:
            continue
        if count:
            out.add("", frames, count, 0, b"", count if leak_profile else 0)
        count, frames = int(m.group(1)), []
        counted += count
    if count:
        out.add("", frames, count, 0, b"", count if leak_profile else 0)
    out.total = int(header.group(2))
    size = nbytes + len(header.group(0))
    if counted < out.total:
        out.cut = (f"the file ends after {size} bytes, having listed {counted} of the {out.total} goroutines "
                   "its header counts")
    elif last != b"\n":
        # printCountProfile ends every record, the last too, with a blank line.
        out.cut = f"the file ends after {size} bytes, inside the stack of its last record"
    return out


def _stacks(parsed: _Parsed) -> tuple[tuple[Stack, ...], appcode.Code]:
    """The parse's records with their files; and the program's own code, learned from all of them."""
    files = {f: p.decode("utf-8", "replace") for f, p in parsed.files.items()}
    names: dict[bytes, str] = {}
    stacks = []
    for (state, frames), st in parsed.stacks.items():
        pairs = []
        for f in frames:
            name = names.get(f)
            if name is None:
                name = names[f] = f.decode("utf-8", "replace")
            pairs.append((name, files.get(f, "")))
        stacks.append(Stack(state, tuple(pairs), st.count, st.max_wait, st.created_by.decode("utf-8", "replace"),
                            st.leaked))
    code = appcode.Code.from_functions([names.get(f) or f.decode("utf-8", "replace") for f in files],
                                       list(files.values()))
    return tuple(stacks), code


@dataclass
class _Group:
    count: int = 0
    max_wait: int = 0
    created_by: str = ""
    leaked: int = 0
    profiler: bool = False


def _groups(stacks: Iterable[Stack], code: appcode.Code) -> list[GroupDict]:
    """Records per stack -> groups per (state, application frame), largest first."""
    merged: dict[tuple[str, str], _Group] = {}
    for st in stacks:
        c = charge(st.frames, code)
        g = merged.setdefault((st.state, c.function), _Group(profiler=c.profiler))
        g.count += st.count
        g.leaked += st.leaked
        g.max_wait = max(g.max_wait, st.max_wait_minutes)
        g.created_by = g.created_by or st.created_by
    out = [
        # A debug=1 group has no state ("") to say it is parked; a profiler's pool is the capture's.
        GroupDict(state=state, function=fn, count=g.count, max_wait_minutes=g.max_wait, created_by=g.created_by,
                  suspect=(g.count >= LEAK_SUSPECT_MIN and bool(state) and state not in _ACTIVE_STATES
                           and not g.profiler),
                  leaked=g.leaked)
        for (state, fn), g in merged.items()
    ]
    out.sort(key=lambda g: (-g["count"], g["state"], g["function"]))
    return out


def read_lines(lines: Iterable[bytes]) -> Dump:
    """Parse a dump given as byte lines (a binary file object works), debug=2 or debug=1."""
    it = iter(lines)
    first = next(it, b"")
    header = _COUNT_HEADER.match(first)
    if header is not None:
        parsed, fmt, truncated = _parse_debug1(it, header), "debug=1", False
    else:
        parsed, nbytes = _parse_debug2(chain([first], it))
        fmt, truncated = "debug=2", bool(parsed.total) and nbytes == GO_DUMP_LIMIT
    stacks, code = _stacks(parsed)
    summary = DumpDict(total=parsed.total, truncated=truncated, cut=parsed.cut, format=fmt,
                       groups=_groups(stacks, code))
    return Dump(summary, stacks, code)


def parse_dump(lines: Iterable[bytes]) -> DumpDict:
    """Summarise a dump given as byte lines (a binary file object works), debug=2 or debug=1."""
    return read_lines(lines).summary


def read_path(path: str | os.PathLike[str]) -> Dump:
    """Parse the dump file at ``path``."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return read_stream(fh, str(p))
    except OSError as exc:
        raise errors.AnalysisError(f"{p}: cannot read goroutine dump: {exc.strerror or exc}") from exc


def load_dump(path: str | os.PathLike[str]) -> DumpDict:
    """Summarise the dump file at ``path``."""
    return read_path(path).summary


def parse_stream(fh: IO[bytes], source: str) -> DumpDict:
    """Summarise the dump read from ``fh``; reject what is not a debug=2 or debug=1 dump, naming ``source``."""
    return read_stream(fh, source).summary


def read_stream(fh: IO[bytes], source: str) -> Dump:
    """Parse the dump read from ``fh``; reject what is not a debug=2 or debug=1 dump, naming ``source``."""
    head = fh.read(64 * 1024)
    if not head:
        raise errors.AnalysisError(f"{source}: empty file, not a goroutine dump")
    if not head.lstrip().startswith(b"goroutine"):
        if head.startswith(b"\x1f\x8b"):
            raise errors.AnalysisError(
                f"{source}: is gzip data (a debug=0 goroutine profile?), not a debug=2 or debug=1 text dump; "
                f"show a profile with `kubectl debugcap top {source}`")
        raise errors.AnalysisError(
            f"{source}: not a goroutine dump (goroutine?debug=2 or debug=1): "
            f"{errors.shorten(head[:200].decode('utf-8', 'replace'), 120)!r}")

    # Hand the sniffed head back as lines; the file object continues after it.
    parts = head.lstrip().split(b"\n")
    pieces = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        pieces.append(parts[-1] + _line(fh, source))
    return read_lines(chain(pieces, iter(partial(_line, fh, source), b"")))


def _line(fh: IO[bytes], source: str) -> bytes:
    """The next line of ``fh``, refused past :data:`LINE_MAX`: a dump of one 1 GiB line must not be
    read whole to find its end."""
    line = fh.readline(LINE_MAX + 1)
    if len(line) > LINE_MAX:
        raise errors.AnalysisError(f"{source}: not read: a line longer than {LINE_MAX >> 10} KiB, which no "
                                   "goroutine dump has")
    return line


def suspects(dump: DumpDict) -> list[GroupDict]:
    """Groups large enough, and parked, to look like a leak (see LEAK_SUSPECT_MIN)."""
    return [g for g in dump["groups"] if g["suspect"]]


def leaked(dump: DumpDict) -> list[GroupDict]:
    """Groups with goroutines the runtime proved leaked (a dump taken after its leak check)."""
    return [g for g in dump["groups"] if g["leaked"]]


def leak_groups(profile: pprof_format.Profile, code: appcode.Code | None = None) -> list[LeakGroupDict]:
    """A goroutineleak profile (debug=0) by application frame, as dumps group, most goroutines first.

    ``code``: the bundle's notion of the program's own code; learned from the profile when None.
    """
    code = code or appcode.Code.from_profile(profile)
    counts: dict[str, int] = {}
    for stack, values in zip(profile.stacks, profile.values, strict=True):
        frames = tuple((profile.node_names[n], profile.node_files[n]) for loc in stack for n in profile.loc_nodes[loc])
        fn = charge(frames, code).function
        counts[fn] = counts.get(fn, 0) + (values[0] if values else 0)
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
