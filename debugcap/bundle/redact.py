"""Streaming redaction of evidence: the line redactor and the redaction report.

What a secret looks like (the detectors, by kind) is :mod:`debugcap.bundle.redact_detectors`;
this module runs them over text, over pprof strings (same-length masks) and over single values
(:func:`looks_secret`), and records each hit as (file, line, detector), never the value.

:class:`debugcap.bundle.writer.BundleWriter` runs every member through this module while it
spools it (redaction is on by default; ``--no-redact`` turns it off), so collectors do not
have to remember it. Three entry points:

* :class:`LineRedactor` for text: bytes in, bytes out, chunk boundaries anywhere (even inside
  a line or a secret). Lines are processed in blocks with C-speed regexes so a 1 GB log costs
  about as much as compressing it; the end of each block is kept as read-only context for the
  next, so two-line patterns (a Kubernetes ``name:``/``value:`` pair) and prefixes
  (``Bearer ``) are seen across block boundaries.
* :func:`debugcap.bundle.profile_masking.mask_profile` for pprof protobufs (after gunzip): the
  strings of the profile's string table (function names, file names, label keys and values)
  get the value-shaped patterns, replaced by ``*`` of the *same length*, so ``go tool pprof``
  still opens the file.
  Execution traces (``trace/trace.out``) are stored unmodified: their strings are not
  length-delimited in a way we can walk cheaply, and a regex over raw bytes could corrupt the
  events around a match; they carry runtime events plus whatever ``trace.Log`` was given.
* :func:`debugcap.bundle.environment.filter_environment` for ``env/environment.txt``: an
  allowlist of variable names, and masking of allowlisted values that look secret; it and
  the pod-yaml collector judge values with :func:`looks_secret`.

Each redaction is recorded as (file, line, redactor); the removed text is never recorded,
logged or put in an exception message.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from debugcap.bundle import manifest
from debugcap.bundle import redact_detectors as detectors
from debugcap.bundle import redact_prefilter as prefilter

MASK: Final = b"***REDACTED***"
MASK_TEXT: Final = MASK.decode()

# A log with a token on every line would otherwise put millions of entries in manifest.json;
# the per-redactor totals in Manifest.redaction_counts stay exact. 1000 is a judgement call.
MAX_RECORDS_PER_FILE: Final = 1000
# Longest prefix a pattern needs before its secret: a Kubernetes "- name: <VAR>" line, or
# "Authorization: Basic ", or a long variable name and "=". 256 bytes is a judgement call.
_CONTEXT_BYTES: Final = 256
_CUT_AFTER: Final = re.compile(rb"[\s\"',;&{}\[\]<>()]")


class RedactionReport:
    """Collects redactions for a whole bundle; capped per file, counted exactly."""

    def __init__(self, max_records_per_file: int = MAX_RECORDS_PER_FILE) -> None:
        self._max = max_records_per_file
        self.records: list[manifest.Redaction] = []
        self.counts: dict[str, Counter[str]] = {}

    def add(self, file: str, line: int, redactor: str) -> None:
        per_file = self.counts.setdefault(file, Counter())
        if sum(per_file.values()) < self._max:
            self.records.append(manifest.Redaction(file=file, line=line, redactor=redactor))
        per_file[redactor] += 1

    def merge(self, other: RedactionReport) -> None:
        for record in other.records:
            if sum(self.counts.get(record.file, Counter()).values()) < self._max:
                self.records.append(record)
        for file, counts in other.counts.items():
            self.counts.setdefault(file, Counter()).update(counts)

    def counts_dict(self) -> dict[str, dict[str, int]]:
        return {file: dict(sorted(c.items())) for file, c in self.counts.items()}


# Value masks in structured text: a bare JSON value after its key becomes a string, and so does
# a YAML plain scalar (a bare "***" would start a YAML alias).
_JSON_KEY_BEFORE: Final = re.compile(rb"\"[ \t]*:[ \t]*$")


def _mask_for(detector: detectors.Detector, data: bytes, secret_start: int, yaml: bool) -> bytes:
    quote = data[secret_start : secret_start + 1]
    if detector.structured and quote in (b'"', b"'"):
        # Keep the quotes the value had: JSON ("apiKey": "x") and shell files stay well-formed.
        return quote + MASK + quote
    line_start = data.rfind(b"\n", 0, secret_start) + 1
    before = data[max(line_start, secret_start - 512) : secret_start]
    if detector.structured and _JSON_KEY_BEFORE.search(before):
        return b'"' + MASK + b'"'
    if yaml and _yaml_scalar_start(before):
        return b'"' + MASK + b'"'
    return MASK


def _yaml_scalar_start(before: bytes) -> bool:
    """Whether a value starting after ``before`` (its line so far) starts a YAML plain scalar."""
    stripped = before.rstrip(b" \t")
    if not stripped.strip():
        return True
    return stripped != before and stripped.endswith((b":", b"-"))


_TEXT_PATTERNS: Final = detectors.TEXT_DETECTORS
# None when RE2 is missing: the detectors then see whole blocks (the same output, slower).
_TEXT_PREFILTER: Final = prefilter.LinePrefilter.build(_TEXT_PATTERNS)
_VALUE_PATTERNS: Final = detectors.VALUE_DETECTORS

_PEM_BEGIN: Final = re.compile(rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_END: Final = re.compile(rb"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_ONE_LINE: Final = re.compile(
    # The body runs to the next "-----" only: a line of BEGINs is read once, not once per BEGIN.
    rb"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)[^-\n]*(?:-(?!----)[^-\n]*)*"
    rb"(-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----)"
)


def _applies(pattern: detectors.Detector, lowered: bytes) -> bool:
    return not pattern.hints or any(hint in lowered for hint in pattern.hints)


def _gated_lines(gate: re.Pattern[bytes], lowered: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line holding a gate match and the line after it, in order, without
    duplicates."""
    spans: list[tuple[int, int]] = []
    search = prefilter.gate_search(gate).search
    pos = 0
    # A hit inside the last span adds nothing: the search resumes at its end (no hit holds a
    # line break, so none reaches over it).
    while (hit := search(lowered, pos)) is not None:
        start = lowered.rfind(b"\n", 0, hit.start()) + 1
        end = lowered.find(b"\n", hit.end())
        # The next line too: a flag's value there (an indented JSON argv list).
        end = -1 if end < 0 else lowered.find(b"\n", end + 1)
        spans.append((start, len(lowered) if end < 0 else end))
        if end < 0:
            break
        pos = end
    return spans


def _run_first_lines(data: bytes, runs: list[tuple[int, int]], first_line: int) -> tuple[list[int], list[int]]:
    """Each run's first line: its index in the runs joined, and its number in the file."""
    indexes: list[int] = []
    numbers: list[int] = []
    index = 0
    line = first_line
    done = 0
    for start, end in runs:
        line += data.count(b"\n", done, start)
        indexes.append(index)
        numbers.append(line)
        lines = data.count(b"\n", start, end)
        index += lines
        line += lines
        done = end
    return indexes, numbers


class LineRedactor:
    """Streaming line redactor for one text member.

    >>> r = LineRedactor("env/x.txt", RedactionReport())
    >>> r.feed(b"DB_PASS") + r.feed(b"WORD=hunter2\\n") + r.close()
    b'DB_PASSWORD=***REDACTED***\\n'
    """

    def __init__(
        self,
        file: str,
        report: RedactionReport,
        *,
        block_size: int = 256 * 1024,
        max_line: int = 1024 * 1024,
        extra: Sequence[detectors.Detector] = (),
    ) -> None:
        self._file = file
        # Admin-supplied detectors (company-specific formats) run after the built-in ones, over
        # whole blocks: the prefilter knows only the built-in ones' triggers.
        self._extra = tuple(extra)
        self._yaml = file.endswith((".yaml", ".yml"))
        self._report = report
        # 256 KiB blocks amortise Python overhead across thousands of lines; the 1 MiB line cap
        # bounds memory on newline-free input (judgement calls, see benchmarks/bench_bundle.py).
        self._block_size = block_size
        self._max_line = max_line
        self._buf = bytearray()
        self._line = 1  # line number of the first byte in _buf
        self._in_pem = False
        self._pem_line = 0  # the BEGIN line of the open key block
        self._pem_counted = False
        self._context = b""

    def feed(self, chunk: bytes) -> bytes:
        self._buf += chunk
        out: list[bytes] = []
        while len(self._buf) >= self._block_size:
            last_nl = self._buf.rfind(b"\n")
            if last_nl >= 0:
                cut = last_nl + 1
            elif len(self._buf) > self._max_line:
                cut = self._forced_cut()
            else:
                break
            piece = bytes(self._buf[:cut])
            del self._buf[:cut]
            out.append(self._process(piece))
        return b"".join(out)

    def close(self) -> bytes:
        piece = bytes(self._buf)
        self._buf.clear()
        return self._process(piece) if piece else b""

    def _forced_cut(self) -> int:
        # One line longer than max_line (minified JSON, binary junk): cut after whitespace or a
        # delimiter that token-shaped secrets never contain, in the second half of the buffer. The
        # prefix before the cut ("Bearer ", "password = ") is carried as context into the next
        # piece (see _process). With no such byte, a 512 KiB token-like run is cut anywhere.
        limit = len(self._buf)
        return max((m.end() for m in _CUT_AFTER.finditer(self._buf, limit // 2)), default=limit)

    def _process(self, piece: bytes) -> bytes:
        if self._in_pem or b"PRIVATE KEY" in piece:
            piece = self._redact_pem(piece)
        # The end of the previous piece is prepended as read-only context, so a secret at the
        # start of this piece still has its prefix: the "name:" line before a "value:" line, or
        # "Bearer " before a cut inside a long line. No match whose secret starts inside the
        # context is replaced, so it comes out unchanged and is sliced off again.
        context = self._context
        data = context + piece
        first_line = self._line - context.count(b"\n")
        if _TEXT_PREFILTER is None:
            data = self._run(_TEXT_PATTERNS, data, data.lower(), len(context), lambda i: first_line + i)
        else:
            data = self._run_prefiltered(_TEXT_PREFILTER, data, len(context), first_line)
        if self._extra:
            data = self._run(self._extra, data, data.lower(), len(context), lambda i: first_line + i,
                             clip_context=True)
        self._context = data[-_CONTEXT_BYTES:]
        self._line += piece.count(b"\n")
        return data[len(context) :]

    def _run_prefiltered(self, picker: prefilter.LinePrefilter, data: bytes, read_only: int, first_line: int) -> bytes:
        """The built-in detectors over the candidate lines only, joined into one text: a match
        never reaches past the line after its trigger's line (the promise of Detector.trigger),
        and that line is a part of the text, so it finds what it would find in the whole block.
        The prefilter folds case itself, so only the joined text is lowercased, not the block."""
        runs = picker.candidates(data)
        if not runs:
            return data
        if runs == [(0, len(data))]:
            return self._run(_TEXT_PATTERNS, data, data.lower(), read_only, lambda i: first_line + i)
        text = b"".join(data[start:end] for start, end in runs)
        # Line numbers are counted only when a detector records something: most blocks have no
        # secret, and counting the lines of the whole block is a tenth of its time.
        numbering: list[tuple[list[int], list[int]]] = []

        def number(i: int) -> int:
            if not numbering:
                numbering.append(_run_first_lines(data, runs, first_line))
            indexes, numbers = numbering[0]
            at = bisect.bisect_right(indexes, i) - 1
            return numbers[at] + i - indexes[at]

        in_context = sum(max(0, min(end, read_only) - start) for start, end in runs)
        redacted = self._run(_TEXT_PATTERNS, text, text.lower(), in_context, number, own_runs=True)
        if redacted == text:
            return data
        return prefilter.put_back(data, runs, redacted)

    def _run(
        self,
        patterns: Sequence[detectors.Detector],
        data: bytes,
        lowered: bytes,
        read_only: int,
        number: Callable[[int], int],
        *,
        own_runs: bool = False,
        clip_context: bool = False,
    ) -> bytes:
        """``data`` with what ``patterns`` find masked, in order; ``number`` turns the index of a
        line of ``data`` into its line number in the file. ``own_runs``: a detector with a trigger
        and no gate reads only the runs of lines its own trigger picks (RE2; the same matches, as
        each match starts on a line holding its trigger and ends on that line or the next)."""
        gated: dict[re.Pattern[bytes], list[tuple[int, int]]] = {}  # valid while data is unchanged
        for pattern in patterns:
            if not _applies(pattern, lowered):
                continue
            if pattern.gate is None:
                own = prefilter.LinePrefilter.of_trigger(pattern.trigger) if own_runs and pattern.trigger else None
                spans = [(0, len(data))] if own is None else own.candidates(lowered)
            elif pattern.gate in gated:
                spans = gated[pattern.gate]
            else:
                spans = gated[pattern.gate] = _gated_lines(pattern.gate, lowered)
            if spans:
                redacted = self._sub(pattern, data, spans, read_only, number, clip_context)
                if redacted != data:
                    data, lowered = redacted, redacted.lower()
                    gated.clear()
        return data

    def _sub(
        self,
        pattern: detectors.Detector,
        data: bytes,
        spans: list[tuple[int, int]],
        read_only: int,
        number: Callable[[int], int],
        clip_context: bool = False,
    ) -> bytes:
        # clip_context (admin patterns): a match may start in the read-only context, as a whole
        # match of "Tenant <hex>" does when a line over max_line was cut inside it; the part of it
        # in this piece is masked (the context went out with the previous piece; forced cuts
        # fall after a delimiter, so usually only the prefix did). Built-in secrets start after
        # their prefix, so theirs never does.
        # Matches come left to right, so counting newlines incrementally from the previous match
        # gives each line number in O(len(data)).
        parts: list[bytes] = []
        done = 0
        pos = 0
        line = 0
        for low, high in spans:
            for start, end in pattern.find(data, low, high):
                if start < read_only and clip_context and end > read_only:
                    start = read_only
                if start < read_only or start < done:
                    continue
                line += data.count(b"\n", pos, start)
                pos = start
                self._report.add(self._file, number(line), pattern.name)
                parts += (data[done:start], _mask_for(pattern, data, start, self._yaml))
                done = end
        if not parts:
            return data
        parts.append(data[done:])
        return b"".join(parts)

    def _redact_pem(self, piece: bytes) -> bytes:
        # Line count is preserved (each key line becomes the mask) so later line numbers stay
        # true to the stored file; one record per key block, at its BEGIN line, once a line of
        # the block turns out to hold more than the mask (a key masked already is not counted).
        lines = piece.split(b"\n")
        for i, line in enumerate(lines):
            number = self._line + i
            if self._in_pem:
                end = _PEM_END.search(line)
                body = line[: end.start()] if end else line
                if end:
                    self._in_pem = False
                    lines[i] = (MASK if body.strip() else b"") + line[end.start() :]
                elif body.strip():
                    lines[i] = MASK
                self._pem_content(body)
                continue
            if b"PRIVATE KEY" not in line:
                continue
            line = _PEM_ONE_LINE.sub(functools.partial(self._one_line_pem, number=number), line)
            begin = _PEM_BEGIN.search(line)
            if begin and not _PEM_END.search(line, begin.end()):
                self._in_pem = True
                self._pem_line, self._pem_counted = number, False
                rest = line[begin.end() :]
                self._pem_content(rest)
                line = line[: begin.end()] + (MASK if rest.strip() else rest)
            lines[i] = line
        return b"\n".join(lines)

    def _pem_content(self, body: bytes) -> None:
        """Record the open key block the first time one of its lines holds more than the mask."""
        if not self._pem_counted and body.strip() not in (b"", MASK):
            self._pem_counted = True
            self._report.add(self._file, self._pem_line, "pem-private-key")

    def _one_line_pem(self, match: re.Match[bytes], number: int) -> bytes:
        if match.group(0)[len(match.group(1)) : -len(match.group(2))].strip() not in (b"", MASK):
            self._report.add(self._file, number, "pem-private-key")
        return match.group(1) + MASK + match.group(2)


# pprof's Profile.string_table (google/pprof proto/profile.proto): every function name, file
# name, label key and label value of a profile is one of these strings.


def mask_same_length(
    data: bytes, file: str, report: RedactionReport, extra: Sequence[detectors.Detector] = ()
) -> bytes:
    """Mask the value-shaped secrets of one string with ``*`` of the same length, so a binary
    format that length-prefixes its strings (pprof's string table) stays valid."""
    buf = bytearray(data)
    for pattern in (*_VALUE_PATTERNS, detectors.KEY_VALUE, *extra):
        for start, end in list(pattern.find(bytes(buf), 0, len(buf))):
            if not buf[start:end].strip(b"*\"'"):
                continue  # masked already (a bundle redacted again): neither changed nor counted
            buf[start:end] = b"*" * (end - start)
            report.add(file, 0, pattern.name)
    return bytes(buf)


def redact_stream(
    chunks: Iterable[bytes], file: str, report: RedactionReport, extra: Sequence[detectors.Detector] = ()
) -> Iterator[bytes]:
    """Line-redact a stream of chunks; yields redacted chunks (possibly empty ones)."""
    redactor = LineRedactor(file, report, extra=extra)
    for chunk in chunks:
        yield redactor.feed(chunk)
    yield redactor.close()


def redact_text(text: str) -> str:
    """``text`` (a message: one line or a few) with what the redactor finds masked, as in a file.
    For messages that leave the bundle: a collector's words go to the manifest, the capture's
    status and its Events, and may quote what a pod answered (an error body with a token)."""
    if not text:
        return text
    data = text.encode("utf-8", "surrogateescape")
    masked = b"".join(redact_stream([data + b"\n"], "message", RedactionReport()))
    return masked.removesuffix(b"\n").decode("utf-8", "surrogateescape")


def looks_secret(value: str) -> str | None:
    """Name of the rule that makes ``value`` look like a secret, or None.

    High-entropy: 20+ token characters mixing upper case, lower case and digits with at least
    3.5 bits of entropy per character (random base64/alphanumeric keys), or 32+ hex digits.
    Lower-case-only values such as pod host names are deliberately not caught.
    """
    value = value.strip().strip("\"'")
    data = value.encode()
    for pattern in _VALUE_PATTERNS:
        if next(pattern.find(data, 0, len(data)), None) is not None:
            return pattern.name
    if _HEX.match(value) and len(value) >= 32:
        return "high-entropy"
    if (
        len(value) >= 20
        and _TOKEN_CHARS.match(value)
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
        and _entropy(value) >= 3.5
    ):
        return "high-entropy"
    return None


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


class _SecretName:
    """``SECRET_NAME.search(name)``: whether a variable, flag or key name bears a secret (the
    pod-yaml collector and the environment allowlist ask); see :func:`detectors.is_secret_name`."""

    @staticmethod
    def search(name: str) -> bool:
        return detectors.is_secret_name(name)


SECRET_NAME: Final = _SecretName()
_TOKEN_CHARS: Final = re.compile(r"^[A-Za-z0-9+/=_.~-]+$")
_HEX: Final = re.compile(r"^[0-9a-fA-F]+$")
