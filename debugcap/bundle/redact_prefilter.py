"""The line prefilter of :class:`debugcap.bundle.redact.LineRedactor`: which lines the detectors see.

Most lines of a log hold nothing a detector looks for. One RE2 pass over a block (folding case,
one byte a character), with the alternation of every detector's
:attr:`~debugcap.bundle.redact_detectors.Detector.trigger`, picks the lines that do (and the line
after each, where a Kubernetes ``value:`` or the value of a flag in a JSON argv list sits); the
detectors then run over those lines joined into one text, and the rest of the block is copied
through untouched. RE2 scans at several hundred MB/s whatever the pattern (a DFA, linear in its
input); Python's ``re`` takes an alternation of ~60 words at ~13 MB/s,
slower than the detectors it would spare, so without RE2 (google-re2 not installed) there is no
prefilter and the detectors see whole blocks: the same output, at the speed of before.

Why the output is the same either way: a detector's span lies on a line with its trigger or on the
next line (the promise each trigger makes, checked by tests/unit/bundle/test_redaction_speed_paths.py
against the corpus), both of which are in the joined text, and a match never reaches past them.
Masks never add or remove a line break, so the joined text goes back line for line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from debugcap.bundle.redact_detectors import Detector

# RE2 builds its DFA lazily within this budget; the alternation needs well under 1 MiB, a budget
# it could outgrow would make RE2 fall back to a slower engine, not fail.
_MAX_MEM: Final = 8 << 20


class _Match(Protocol):
    def start(self) -> int: ...

    def end(self) -> int: ...


class _Searcher(Protocol):
    def search(self, text: bytes, pos: int = ...) -> _Match | None: ...


class _Hit:
    __slots__ = ("_span",)

    def __init__(self, span: tuple[int, int]) -> None:
        self._span = span

    def start(self) -> int:
        return self._span[0]

    def end(self) -> int:
        return self._span[1]


class _DirectSearcher:
    """RE2's own match call, without the wrapper's generator and match object around each
    search (about half of a search's ~1.6 us on a candidate line, which takes several)."""

    __slots__ = ("_match", "_unanchored")

    def __init__(self, match: Callable[[Any, bytes, int, int], list[tuple[int, int]]], unanchored: object) -> None:
        self._match = match
        self._unanchored = unanchored

    def search(self, text: bytes, pos: int = 0) -> _Hit | None:
        span = self._match(self._unanchored, text, min(pos, len(text)), len(text))[0]
        return None if span[0] < 0 else _Hit(span)


def _compile(pattern: bytes, *, fold_case: bool = False) -> _Searcher | None:
    try:
        import re2
    except ImportError:
        return None
    options = re2.Options()
    options.max_mem = _MAX_MEM
    # One byte a character, as Python's re reads bytes: in UTF-8 (RE2's default) "[^\s/@]" does
    # not match a byte that is not UTF-8, and a URL with one in its user name was no candidate
    # (its password kept) while the plain path masked it.
    options.encoding = re2.Options.Encoding.LATIN1
    # ASCII letters only in the triggers: folding them reads the block as its lowercase would be.
    options.case_sensitive = not fold_case
    compiled = re2.compile(pattern, options)
    # The direct call is google-re2's internal API (re2._re2 under its wrapper); a release
    # without it gets the wrapper, the same matches.
    regexp = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if regexp is not None and anchor is not None and hasattr(regexp, "Match"):
        return _DirectSearcher(regexp.Match, anchor)
    searcher: _Searcher = compiled
    return searcher


@functools.cache
def gate_search(gate: re.Pattern[bytes]) -> _Searcher:
    """``gate`` compiled by RE2 when it is installed (a gate is in the syntax both share): the
    lines it matches are the same, found at RE2's speed (Python's takes a gate's alternation of
    words at ~13 MB/s)."""
    return _compile(gate.pattern) or gate


class LinePrefilter:
    """Finds the runs of lines of a block that any of a set of detectors may find something in."""

    def __init__(self, searcher: _Searcher) -> None:
        self._searcher = searcher

    @classmethod
    def build(cls, detectors: Sequence[Detector]) -> LinePrefilter | None:
        """A prefilter for ``detectors``, or None: RE2 is not installed, or a detector has no
        trigger (it may find something on any line)."""
        triggers = [d.trigger for d in detectors]
        if not triggers or any(t is None for t in triggers):
            return None
        searcher = _compile("|".join(f"(?:{t})" for t in triggers if t is not None).encode(), fold_case=True)
        return None if searcher is None else cls(searcher)

    @staticmethod
    @functools.cache
    def of_trigger(trigger: str) -> LinePrefilter | None:
        """A prefilter for one trigger (None without RE2): inside the candidate lines, a detector
        with no gate reads only the runs of its own trigger's lines and the line after each."""
        searcher = _compile(trigger.encode())
        return None if searcher is None else LinePrefilter(searcher)

    def candidates(self, lowered: bytes) -> list[tuple[int, int]]:
        """(start, end) of each run of lines to search, in order and apart: each line holding a
        trigger and the line after it. A run ends after its last line's break (or at the end).
        ``lowered``: the text lowercased, or as it is for a prefilter of :meth:`build` (it folds
        case: the same lines either way)."""
        runs: list[tuple[int, int]] = []
        search = self._searcher.search
        size = len(lowered)
        pos = 0
        while pos < size:
            hit = search(lowered, pos)
            if hit is None:
                break
            start = lowered.rfind(b"\n", 0, hit.start()) + 1
            line_end = lowered.find(b"\n", hit.start())
            if line_end < 0:
                line_end = size
            after = lowered.find(b"\n", line_end + 1)
            end = size if after < 0 else after + 1
            if runs and start <= runs[-1][1]:
                runs[-1] = (runs[-1][0], max(end, runs[-1][1]))
            else:
                runs.append((start, min(end, size)))
            # The next line may hold a trigger too (it then brings the line after it).
            pos = line_end + 1
        return runs


def put_back(data: bytes, runs: list[tuple[int, int]], redacted: bytes) -> bytes:
    """``data`` with each run replaced by its part of ``redacted`` (the runs joined, then masked):
    the runs hold as many line breaks there as in ``data``, the last one perhaps fewer."""
    parts: list[bytes] = []
    done = 0
    pos = 0
    for i, (start, end) in enumerate(runs):
        parts.append(data[done:start])
        if i == len(runs) - 1:
            parts.append(redacted[pos:])
        else:
            cut = pos
            for _ in range(data.count(b"\n", start, end)):
                cut = redacted.index(b"\n", cut) + 1
            parts.append(redacted[pos:cut])
            pos = cut
        done = end
    parts.append(data[done:])
    return b"".join(parts)
