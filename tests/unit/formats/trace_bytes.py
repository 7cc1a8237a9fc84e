"""Write small Go execution traces byte by byte, for tests that need an exact, known trace.

The encoding is the wire format of Go 1.22+ (``src/internal/trace/tracev2``): a header, then per
generation a sync batch (frequency, clock), string and stack tables, per-thread event batches
and, from Go 1.26, an end-of-generation byte. Events are ``(type, timestamp delta, *args)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from debugcap.formats.gotrace import spec

NO_THREAD = (1 << 64) - 1
Ev = tuple[int, ...]  # (type, timestamp delta, arguments...)
Frame = tuple[int, int, int, int]  # (PC, function string ID, file string ID, line)


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def batch(gen: int, m: int, ts: int, payload: bytes) -> bytes:
    return bytes([spec.EV_EVENT_BATCH]) + uvarint(gen) + uvarint(m) + uvarint(ts) + uvarint(len(payload)) + payload


def events(evs: Sequence[Ev]) -> bytes:
    return b"".join(bytes([e[0]]) + b"".join(uvarint(a) for a in e[1:]) for e in evs)


@dataclass
class Generation:
    gen: int
    threads: list[tuple[int, int, list[Ev]]]  # (M, batch timestamp, events), batches in this order
    strings: dict[int, str] = field(default_factory=dict)
    stacks: dict[int, list[Frame]] = field(default_factory=dict)
    ts: int = 500  # timestamp of the structural batches: the generation's first moment


def encode(version: int, gens: Sequence[Generation], freq: int = 1_000_000_000, *, end: bool = True) -> bytes:
    """A trace: ``freq`` ticks per second (the default makes a tick a nanosecond). ``end=False``
    leaves out the last generation's end-of-generation byte (Go 1.26), as a cut trace would."""
    out = bytearray(b"go 1.%d trace\x00\x00\x00" % version)
    for i, g in enumerate(gens):
        if version >= 25:
            sync = bytes([spec.EV_SYNC, spec.EV_FREQUENCY]) + uvarint(freq)
            sync += bytes([spec.EV_CLOCK_SNAPSHOT]) + uvarint(0) + uvarint(g.ts) + uvarint(1_800_000_000) + uvarint(0)
        else:
            sync = bytes([spec.EV_FREQUENCY]) + uvarint(freq)
        out += batch(g.gen, NO_THREAD, g.ts, sync)
        if g.strings:
            out += batch(g.gen, NO_THREAD, g.ts, bytes([spec.EV_STRINGS]) + b"".join(
                bytes([spec.EV_STRING]) + uvarint(sid) + uvarint(len(s.encode())) + s.encode()
                for sid, s in g.strings.items()))
        if g.stacks:
            out += batch(g.gen, NO_THREAD, g.ts, bytes([spec.EV_STACKS]) + b"".join(
                bytes([spec.EV_STACK]) + uvarint(sid) + uvarint(len(frames))
                + b"".join(uvarint(v) for f in frames for v in f)
                for sid, frames in g.stacks.items()))
        for m, ts, evs in g.threads:
            out += batch(g.gen, m, ts, events(evs))
        if version >= 26 and (end or i < len(gens) - 1):
            out.append(spec.EV_END_OF_GENERATION)
    return bytes(out)
