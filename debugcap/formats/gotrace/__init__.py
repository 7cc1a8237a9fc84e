"""Go execution traces (``runtime/trace``, ``/debug/pprof/trace``) of Go 1.22 and later, in pure Python.

``Reader(data)`` iterates over the events in Go's order with Go's timestamps, exactly as Go's
own reader (``internal/trace``, which ``go tool trace`` uses) yields them; an analysis over
these events therefore gets ``go tool trace``'s numbers. Older formats (Go 1.21 and before)
raise :class:`UnsupportedTraceError`; a malformed trace raises :class:`TraceError` where Go's
reader fails, after the events of the generations that were complete (a trace cut short ends
with :class:`TruncatedTraceError`). All are :class:`debugcap.errors.AnalysisError`.

Modules, bottom up: :mod:`.spec` (wire tables), :mod:`.wire` (header, batches, per-generation
tables), :mod:`.order` and :mod:`.order_ranges` (the scheduler state machine that orders
events across threads), :mod:`.pdqsort` (Go's sort, for its tie-breaking), :mod:`.reader`
(the iteration), :mod:`.events` (what an event means). Callers: :mod:`debugcap.analysis.traces`.
"""

from debugcap.formats.gotrace.events import GO_TRANSITIONS, Event, GoTransition, go_states, go_transition
from debugcap.formats.gotrace.reader import Reader
from debugcap.formats.gotrace.wire import Table, TraceError, TruncatedTraceError, UnsupportedTraceError, read_header

__all__ = ["GO_TRANSITIONS", "Event", "GoTransition", "Reader", "Table", "TraceError", "TruncatedTraceError",
           "UnsupportedTraceError", "go_states", "go_transition", "read_header"]
