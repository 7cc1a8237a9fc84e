"""The trace reader: generations in, events out in order, with Go's timestamps to the nanosecond.

Per generation: read its batches (:mod:`~debugcap.formats.gotrace.wire`), keep one cursor per
thread in a min-heap by the time of its next event, and repeatedly ask the ordering
(:mod:`~debugcap.formats.gotrace.order`) whether the earliest can happen; if not, sort the
frontier and try the others. CPU samples are merged in by time; every event's time is forced
to be later than the one before. Ported from the Go project's ``src/internal/trace/reader.go``,
``batchcursor.go`` and ``generation.go`` (Copyright 2023 The Go Authors; BSD-style license,
https://go.dev/LICENSE), including the heap's tie-breaking, so that event order and times are
Go's exactly: ``go tool trace -pprof`` values are sums of these times.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.formats.gotrace import spec
from debugcap.formats.gotrace.events import Event, sync_event
from debugcap.formats.gotrace.order import Ordering
from debugcap.formats.gotrace.pdqsort import sort_func
from debugcap.formats.gotrace.wire import (
    Batch,
    BatchStream,
    CPUSample,
    Generation,
    Table,
    TraceError,
    TruncatedTraceError,
    finish_generation,
    process_batch,
    read_header,
    uvarint,
)

_MAX_TIME = 1 << 63


def decode_batch(data: bytes, start: int, freq: float
                 ) -> tuple[list[tuple[int, int, list[int]]], TraceError | None]:
    """The events of one batch: (type, time in ns, arguments); and the error that stopped the
    decoding, if any, which the cursor raises when it gets there (as Go's decodes lazily)."""
    out: list[tuple[int, int, list[int]]] = []
    argc = spec.ARG_COUNT
    n = len(data)
    pos = 0
    last = start
    while pos < n:
        typ = data[pos]
        k = argc[typ]
        if k < 0:
            what = "found invalid event type" if k == -1 else "found event without a timestamp: type="
            return out, TraceError(f"{what} {typ}")
        pos += 1
        vals = [0, 0, 0, 0, 0]  # the timestamp delta, then the arguments
        i = 0
        try:
            for i in range(k + 1):
                b = data[pos]
                if b < 0x80:
                    vals[i] = b
                    pos += 1
                elif data[pos + 1] < 0x80:  # two bytes: most timestamp deltas
                    vals[i] = (b & 0x7F) | data[pos + 1] << 7
                    pos += 2
                elif data[pos + 2] < 0x80:
                    vals[i] = (b & 0x7F) | (data[pos + 1] & 0x7F) << 7 | data[pos + 2] << 14
                    pos += 3
                elif data[pos + 3] < 0x80:  # four: heap sizes from 2 MiB to 256 MiB
                    vals[i] = ((b & 0x7F) | (data[pos + 1] & 0x7F) << 7 | (data[pos + 2] & 0x7F) << 14
                               | data[pos + 3] << 21)
                    pos += 4
                else:
                    vals[i], pos = uvarint(data, pos)
        except (IndexError, ValueError):
            what = "found invalid uvarint for timestamp" if i == 0 else "found invalid uvarint"
            return out, TraceError(f"{what} (event {spec.event_name(typ)})")
        last += int(vals.pop(0) * freq)  # what remains are the arguments, MAX_ARGS of them
        out.append((typ, last, vals))
    return out, None


class Cursor:
    """One thread's events in a generation (Go's batchCursor), the next one decoded."""

    __slots__ = ("m", "batches", "idx", "events", "pos", "err", "typ", "time", "args")

    def __init__(self, m: int, batches: list[Batch]) -> None:
        self.m = m
        self.batches = batches
        self.idx = 0
        self.events: list[tuple[int, int, list[int]]] = []
        self.pos = 0
        self.err: TraceError | None = None
        self.typ = 0
        self.time = 0
        self.args: list[int] = []

    def next_event(self, freq: float) -> bool:
        pos = self.pos
        if pos < len(self.events):
            self.typ, self.time, self.args = self.events[pos]
            self.pos = pos + 1
            return True
        while self.pos >= len(self.events):
            if self.err is not None:
                raise self.err
            if self.idx >= len(self.batches):
                return False
            b = self.batches[self.idx]
            self.idx += 1
            self.events, self.err = decode_batch(b.data, int(b.time * freq), freq)
            self.pos = 0
        self.typ, self.time, self.args = self.events[self.pos]
        self.pos += 1
        return True


def _less(a: Cursor, b: Cursor) -> bool:
    return a.time < b.time


class Reader:
    """Iterate over the events of a Go 1.22+ trace; raises a :class:`wire.TraceError` where Go's
    reader returns an error (after yielding the generation boundary Go yields before it)."""

    def __init__(self, data: bytes) -> None:
        self.version = read_header(data)
        self.size = len(data)
        self.stream = BatchStream(data)
        self.order = Ordering(self.version)
        self.last_ts = 0
        self.gen: Generation | None = None
        self.generations = 0  # generations installed so far
        self.complete_bytes = 0  # bytes read through the last generation installed
        self.frontier: list[Cursor] = []
        self.cpu: list[CPUSample] = []
        self.cpu_pos = 0
        self.syncs = 0
        self.done = False
        self.read_gen_err: TraceError | None = None
        # Traces before Go 1.26 have no end-of-generation marker: the first batch of the next
        # generation is read, "spilled", to see the end of this one.
        self.spill: tuple[int, Batch] | None = None
        self.spill_err: TraceError | None = None
        self.spill_err_sync = False

    def __iter__(self) -> Iterator[Event]:
        order = self.order
        queue, m_states, dispatch = order.queue, order.m_states, order.dispatch
        popleft = queue.popleft
        frontier = self.frontier  # the same list all along: the heap functions work in place
        checked = _CHECKED
        last = self.last_ts
        tb: Table | None = None  # the generation's table; None sends every event through _next
        cpu_t = 0  # the time of the next CPU sample
        while not self.done:
            if queue:
                ev = popleft()
            elif frontier and tb is not None and frontier[0].time <= cpu_t and order.initial_gen:
                # _next's common case, inline: the earliest thread's next event can happen now
                # (Ordering.advance, inline too); the cursor then moves on, and the heap is fixed
                # only if another thread is earlier.
                bc = frontier[0]
                m, typ = bc.m, bc.typ
                ms = m_states.get(m) if m != -1 else None
                handler = dispatch.get(typ)
                if ms is None or handler is None:
                    ok = order.advance(typ, bc.args, bc.time, tb, m, tb.gen)
                else:
                    new = handler(bc.args, typ, bc.time, tb, m, tb.gen, (ms[0], ms[1], m))
                    ok = new is not None
                    if new is not None:
                        ms[0], ms[1] = new[0], new[1]
                if not ok:
                    self._advance_blocked()
                else:
                    pos, evs = bc.pos, bc.events
                    if pos < len(evs):
                        bc.typ, t, bc.args = evs[pos]
                        bc.time, bc.pos = t, pos + 1
                        n = len(frontier)
                        if n > 1 and (frontier[1].time < t or n > 2 and frontier[2].time < t):
                            _sift_down(frontier, 0)
                    elif bc.next_event(tb.freq):
                        _heap_update(frontier, 0)
                    else:
                        _heap_remove(frontier, 0)
                ev = popleft()
            else:
                ev = self._next()
                tb = self.gen.table if self.gen is not None else None
                cpu_t = self.cpu[self.cpu_pos].time if self.cpu_pos < len(self.cpu) else _MAX_TIME
            if ev.typ in checked:
                _check_ids(ev)
            if ev.time <= last:
                ev.time = last + 1
            last = self.last_ts = ev.time  # kept on self too: syncs are stamped with it
            yield ev

    def _next(self) -> Event:
        queue = self.order.queue
        if queue:
            return queue.popleft()
        if not self.frontier and self.cpu_pos >= len(self.cpu):
            if self.version < 26:
                return self._next_gen_with_spill()
            if self.read_gen_err is not None:
                raise self.read_gen_err
            try:
                gen = self._read_generation()
            except TraceError as exc:
                # Go yields the boundary of what was complete, then the error.
                self.read_gen_err = exc
                self.gen = None
                return self._sync(None, self.last_ts)
            return self._install(gen)
        assert self.gen is not None
        frontier = self.frontier
        if self.cpu_pos < len(self.cpu) and (not frontier or self.cpu[self.cpu_pos].time < frontier[0].time):
            s = self.cpu[self.cpu_pos]
            self.cpu_pos += 1
            return Event(spec.EV_CPU_SAMPLE, s.time, s.g, s.p, s.m, [s.stack, 0, 0, 0], self.gen.table)
        if not self._try_advance(0):
            self._advance_blocked()
        return queue.popleft()

    def _advance_blocked(self) -> None:
        """Rare: the earliest event must wait for another thread's. Go sorts its heap (a sorted
        heap is still a heap) and tries the others in time order."""
        assert self.gen is not None
        frontier = self.frontier
        sort_func(frontier, _less)
        for i in range(1, len(frontier)):
            if self._try_advance(i):
                return
        raise TraceError(f"broken trace: failed to advance in generation {self.gen.gen}: no thread's "
                         "next event can happen")

    def _try_advance(self, i: int) -> bool:
        gen = self.gen
        assert gen is not None
        bc = self.frontier[i]
        if not self.order.advance(bc.typ, bc.args, bc.time, gen.table, bc.m, gen.gen):
            return False
        if bc.next_event(gen.table.freq):
            _heap_update(self.frontier, i)
        else:
            self.frontier = _heap_remove(self.frontier, i)
        return True

    def _sync(self, table: Table | None, time: int) -> Event:
        self.syncs += 1
        return sync_event(table, time, self.syncs)

    def _install(self, gen: Generation | None) -> Event:
        if gen is None:
            self.gen = None
            self.done = True
            return self._sync(None, self.last_ts)
        self.gen = gen
        self.cpu, self.cpu_pos = gen.cpu_samples, 0
        freq = gen.table.freq
        for m, batches in gen.batches.items():
            bc = Cursor(m, batches)
            if bc.next_event(freq):
                self.frontier = _heap_insert(self.frontier, bc)
        self.generations += 1
        self.complete_bytes = self.stream.pos
        return self._sync(gen.table, int(gen.min_ts * freq))

    def _read_generation(self) -> Generation | None:
        """The next generation of a Go 1.26+ trace, up to its end-of-generation batch."""
        g = Generation()
        while True:
            res = self.stream.next()
            if res is None:
                if g.batches:
                    raise TruncatedTraceError("incomplete generation found; trace likely truncated")
                return None
            b, gen = res
            if g.table.gen == 0:
                g.table.gen = gen
            if b.first(spec.EV_END_OF_GENERATION):
                break
            if gen == 0:
                raise TraceError(f"invalid generation number {gen}")
            if gen != g.table.gen:
                raise TraceError("broken trace: missing end-of-generation event, or generations are interleaved")
            if g.min_ts == 0 or b.time < g.min_ts:
                g.min_ts = b.time
            process_batch(g, b, self.version)
        finish_generation(g, self.version)
        return g

    def _next_gen_with_spill(self) -> Event:
        if self.spill_err is not None:
            if self.spill_err_sync:
                raise self.spill_err
            self.spill_err_sync = True
            return self._sync(None, self.last_ts)
        if self.gen is not None and self.spill is None:
            self.done = True
            return self._sync(None, self.last_ts)
        gen, self.spill, self.spill_err = self._read_generation_with_spill(self.spill)
        if gen is None:
            self.gen = None
            self.spill_err_sync = True
            return self._sync(None, self.last_ts)
        return self._install(gen)

    def _read_generation_with_spill(self, spill: tuple[int, Batch] | None
                                    ) -> tuple[Generation | None, tuple[int, Batch] | None, TraceError | None]:
        """A generation of a Go 1.22-1.25 trace: it ends where the next one's first batch starts."""
        g = Generation()
        err: TraceError | None = None
        try:
            if spill is not None:
                g.table.gen, g.min_ts = spill[0], spill[1].time
                process_batch(g, spill[1], self.version)
                spill = None
            while True:
                try:
                    res = self.stream.next()
                except TraceError as exc:
                    if g.table.gen == 0:
                        raise
                    err = exc  # maybe only the next generation is broken: keep this one
                    break
                if res is None:
                    break
                b, gen = res
                if gen == 0:
                    raise TraceError(f"invalid generation number {gen}")
                if g.table.gen == 0:
                    g.table.gen = gen
                if gen == g.table.gen + 1:
                    spill = (gen, b)
                    break
                if gen != g.table.gen:
                    raise TraceError("generations out of order")
                if g.min_ts == 0 or b.time < g.min_ts:
                    g.min_ts = b.time
                process_batch(g, b, self.version)
            finish_generation(g, self.version)
        except TraceError as exc:
            return None, None, exc
        return g, spill, err


# Event types with stack or string IDs to look up.
_CHECKED = frozenset(t for t in range(spec.NUM_SPECS) if spec.STACK_ARGS[t] or spec.STRING_ARGS[t])


def _check_ids(ev: Event) -> None:
    """Every stack and string an event names exists in its generation (Go's validateTableIDs)."""
    table = ev.table
    assert table is not None
    for i in spec.STACK_ARGS[ev.typ]:
        sid = ev.args[i]
        if sid and sid not in table.stacks:
            raise TraceError(f"found invalid stack ID {sid} for event {spec.event_name(ev.typ)}")
    for i in spec.STRING_ARGS[ev.typ]:
        sid = ev.args[i]
        if sid and sid not in table.strings:
            raise TraceError(f"found invalid string ID {sid} for event {spec.event_name(ev.typ)}")


# ---- Go's min-heap of cursors, operation for operation: ties are broken as Go breaks them ----


def _heap_insert(heap: list[Cursor], bc: Cursor) -> list[Cursor]:
    heap.append(bc)
    _sift_up(heap, len(heap) - 1)
    return heap


def _heap_update(heap: list[Cursor], i: int) -> None:
    if _sift_up(heap, i) != i:
        return
    _sift_down(heap, i)


def _heap_remove(heap: list[Cursor], i: int) -> list[Cursor]:
    while i > 0:
        parent = (i - 1) // 2
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent
    heap[0], heap[-1] = heap[-1], heap[0]
    heap.pop()
    _sift_down(heap, 0)
    return heap


def _sift_up(heap: list[Cursor], i: int) -> int:
    while i > 0 and heap[(i - 1) // 2].time > heap[i].time:
        parent = (i - 1) // 2
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent
    return i


def _sift_down(heap: list[Cursor], i: int) -> int:
    n = len(heap)
    while True:
        m = i
        least = heap[i].time if i < n else _MAX_TIME
        for c in (2 * i + 1, 2 * i + 2):
            if c < n and heap[c].time < least:
                least, m = heap[c].time, c
        if m == i:
            return i
        heap[i], heap[m] = heap[m], heap[i]
        i = m
