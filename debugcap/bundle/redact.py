"""Streaming redaction of evidence: the patterns, the line redactor and the redaction report.

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

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from debugcap.bundle import manifest

MASK: Final = b"***REDACTED***"
MASK_TEXT: Final = MASK.decode()

# A log with a token on every line would otherwise put millions of entries in manifest.json;
# the per-redactor totals in Manifest.redaction_counts stay exact. 1000 is a judgement call.
MAX_RECORDS_PER_FILE: Final = 1000
# Longest prefix a pattern needs before its secret: a Kubernetes "- name: <VAR>" line, or
# "Authorization: Basic ", or a long variable name and "=". 256 bytes is a judgement call.
_CONTEXT_BYTES: Final = 256
_CUT_AFTER: Final = re.compile(rb"[\s\"',;&{}\[\]<>()]")

# Words that make a variable, flag or key name look secret. PWD is deliberately absent
# (it is the working directory); KEY also hits names like "monkey", and over-redaction
# is the safe side to err on.
_SECRET_WORDS: Final = (
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|SESSION|COOKIE|SIGNATURE|SALT"
)
_NAME_CHARS: Final = r"[A-Za-z0-9_.-]"
_SECRET_WORD_GATE: Final = re.compile(_SECRET_WORDS.lower().encode())


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


@dataclass(frozen=True)
class _Pattern:
    """A single-line (or two-line) regex; group ``secret`` is masked, the rest kept."""

    name: str
    regex: re.Pattern[bytes]
    # Fast skip: the pattern cannot match a block containing none of these (lowercased) bytes.
    hints: tuple[bytes, ...] = ()
    # Faster still for costly patterns: only lines where this case-sensitive regex matches the
    # lowercased text are searched (case-insensitive regexes are ~10x slower in CPython's re).
    gate: re.Pattern[bytes] | None = None


def _p(
    name: str, pattern: str, *hints: bytes, flags: int = 0, gate: re.Pattern[bytes] | None = None
) -> _Pattern:
    return _Pattern(name, re.compile(pattern.encode(), flags), hints, gate)


_NOT_ALREADY_MASKED: Final = r"(?!\*\*\*REDACTED\*\*\*)"

_K8S_SECRET_NAME: Final = rf"{_NAME_CHARS}*(?:{_SECRET_WORDS}){_NAME_CHARS}*"

_K8S_ENV_YAML: Final = _p(
    "k8s-env-value",
    rf"-[ \t]+name:[ \t]*[\"']?{_K8S_SECRET_NAME}[\"']?[ \t]*\r?\n[ \t]+value:[ \t]*"
    rf"{_NOT_ALREADY_MASKED}(?P<secret>\S[^\r\n]*?)[ \t]*\r?$",
    b"name",
    flags=re.IGNORECASE | re.MULTILINE,
)
_K8S_ENV_JSON: Final = _p(
    "k8s-env-value",
    # One line (kubectl -o json | jq -c) or two (kubectl get -o json: indented, one key a line).
    rf"\"name\"[ \t]*:[ \t]*\"{_K8S_SECRET_NAME}\"[ \t]*,[ \t]*(?:\r?\n[ \t]*)?\"value\"[ \t]*:[ \t]*\""
    rf"{_NOT_ALREADY_MASKED}(?P<secret>(?:[^\"\\\r\n]|\\.)+)\"",
    b"name",
    flags=re.IGNORECASE,
)
_URL_CREDENTIALS: Final = _p(
    "url-credentials",
    rf"\b[A-Za-z][A-Za-z0-9+.-]{{1,20}}://[^\s/:@]+:{_NOT_ALREADY_MASKED}(?P<secret>[^\s/@]+)(?=@)",
    b"://",
)
_BASIC_AUTH: Final = _p(
    "basic-auth",
    r"authorization[\"']?[ \t]*[:=][ \t]*[\"']?basic[ \t]+(?P<secret>[A-Za-z0-9+/]{4,}={0,2})",
    b"basic",
    flags=re.IGNORECASE,
)
_BEARER: Final = _p(
    "bearer-token", r"\bbearer[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)", b"bearer", flags=re.IGNORECASE
)
_JWT: Final = _p("jwt", r"\b(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)", b"eyj")
_AWS_KEY: Final = _p(
    "aws-access-key",
    r"\b(?P<secret>(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16})\b",
    gate=re.compile(rb"a(?:kia|sia|ida|roa|gpa|npa|nva|ipa)"),
)
_ENV_SECRET: Final = _p(
    "env-secret",
    rf"(?<!{_NAME_CHARS})[\"']?{_K8S_SECRET_NAME}[\"']?[ \t]*[=:][ \t]*"
    rf"(?![\"']?\*\*\*REDACTED)(?![\"']?(?:bearer|basic)\b)"
    # A double-quoted value may hold JSON escapes (\"). A list, or an object opening ({", { and a
    # line end), is not one secret but a structure whose own keys get their chance: JSON stays
    # valid JSON. "{SSHA}..." (an LDAP password hash) is still a value.
    r"(?![\[\]}]|\{[\s\"'}]|\{$)"
    r"(?P<secret>\"(?!\")[^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*\"|'[^'\r\n]+'|\{[A-Za-z0-9_-]{1,20}\}[^\s\"',;&}\]]*|[^\s\"',;&}\]]+)",
    flags=re.IGNORECASE,
    gate=_SECRET_WORD_GATE,
)
# A bare value after a JSON key ("secret_file_is_set": false, "token_ttl": 30) is masked as a
# quoted string, so JSON evidence (expvar) does not turn into invalid JSON.
_JSON_KEY_BEFORE: Final = re.compile(rb"\"[ \t]*:[ \t]*$")


def _mask_for(pattern: _Pattern, data: bytes, match_start: int, secret_start: int) -> bytes:
    if pattern is not _ENV_SECRET:
        return MASK
    quote = data[secret_start : secret_start + 1]
    if quote in (b'"', b"'"):
        # Keep the quotes the value had: JSON ("apiKey": "x") and shell files stay well-formed.
        return quote + MASK + quote
    if _JSON_KEY_BEFORE.search(data, match_start, secret_start):
        return b'"' + MASK + b'"'
    return MASK


_CLI_FLAG: Final = _p(
    "cli-flag-secret",
    rf"(?<!{_NAME_CHARS})--?{_K8S_SECRET_NAME}[ \t]+{_NOT_ALREADY_MASKED}(?P<secret>[^\s\-][^\s]*)",
    b"-",
    flags=re.IGNORECASE,
    gate=_SECRET_WORD_GATE,
)
# The same flag as a JSON list's elements: expvar's "cmdline" (os.Args), an exec probe's command.
_CLI_FLAG_JSON: Final = _p(
    "cli-flag-secret",
    rf"\"--?{_K8S_SECRET_NAME}\"[ \t]*,[ \t]*(?:\r?\n[ \t]*)?\"{_NOT_ALREADY_MASKED}"
    r"(?!\")(?P<secret>[^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*)\"",
    b'"-',
    flags=re.IGNORECASE,
)
_PEM_BLOCK: Final = _p(
    "pem-private-key",
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?P<secret>[\s\S]*?)-----END [A-Z0-9 ]*PRIVATE KEY-----",
    b"private key",
)

# Order matters: specific shapes first, so the generic name=value rules do not also fire on
# what they already masked (each secret is then recorded once).
_TEXT_PATTERNS: Final = (
    _K8S_ENV_YAML,
    _K8S_ENV_JSON,
    _URL_CREDENTIALS,
    _BASIC_AUTH,
    _BEARER,
    _JWT,
    _AWS_KEY,
    _ENV_SECRET,
    _CLI_FLAG,
    _CLI_FLAG_JSON,
)
# Shapes that identify a secret by its value alone.
_VALUE_PATTERNS: Final = (_URL_CREDENTIALS, _BEARER, _JWT, _AWS_KEY, _PEM_BLOCK)

_PEM_BEGIN: Final = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_END: Final = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_ONE_LINE: Final = re.compile(
    rb"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?:(?!-----END ).)*?(-----END [A-Z0-9 ]*PRIVATE KEY-----)"
)


def _applies(pattern: _Pattern, lowered: bytes) -> bool:
    return not pattern.hints or any(hint in lowered for hint in pattern.hints)


def _gated_lines(gate: re.Pattern[bytes], lowered: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line holding a gate match, in order, without duplicates."""
    spans: list[tuple[int, int]] = []
    for hit in gate.finditer(lowered):
        if spans and hit.start() < spans[-1][1]:
            continue
        start = lowered.rfind(b"\n", 0, hit.start()) + 1
        end = lowered.find(b"\n", hit.end())
        spans.append((start, len(lowered) if end < 0 else end))
    return spans


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
    ) -> None:
        self._file = file
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
        lowered = data.lower()
        first_line = self._line - context.count(b"\n")
        gated: dict[re.Pattern[bytes], list[tuple[int, int]]] = {}  # valid while data is unchanged
        for pattern in _TEXT_PATTERNS:
            if not _applies(pattern, lowered):
                continue
            if pattern.gate is None:
                spans = [(0, len(data))]
            elif pattern.gate in gated:
                spans = gated[pattern.gate]
            else:
                spans = gated[pattern.gate] = _gated_lines(pattern.gate, lowered)
            if spans:
                redacted = self._sub(pattern, data, spans, len(context), first_line)
                if redacted != data:
                    data, lowered = redacted, redacted.lower()
                    gated.clear()
        self._context = data[-_CONTEXT_BYTES:]
        self._line += piece.count(b"\n")
        return data[len(context) :]

    def _sub(
        self, pattern: _Pattern, data: bytes, spans: list[tuple[int, int]], read_only: int, first_line: int
    ) -> bytes:
        # Matches come left to right, so counting newlines incrementally from the previous match
        # gives each line number in O(len(data)).
        parts: list[bytes] = []
        done = 0
        pos = 0
        line = first_line
        for low, high in spans:
            for match in pattern.regex.finditer(data, low, high):
                start, end = match.span("secret")
                if start < read_only or start < done:
                    continue
                line += data.count(b"\n", pos, start)
                pos = start
                self._report.add(self._file, line, pattern.name)
                parts += (data[done:start], _mask_for(pattern, data, match.start(), start))
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


def mask_same_length(data: bytes, file: str, report: RedactionReport) -> bytes:
    """Mask the value-shaped secrets of one string with ``*`` of the same length, so a binary
    format that length-prefixes its strings (pprof's string table) stays valid."""
    buf = bytearray(data)
    for pattern in (*_VALUE_PATTERNS, _ENV_SECRET):
        for match in pattern.regex.finditer(bytes(buf)):
            start, end = match.span("secret")
            if not match["secret"].strip(b"*\"'"):
                continue  # masked already (a bundle redacted again): neither changed nor counted
            buf[start:end] = b"*" * (end - start)
            report.add(file, 0, pattern.name)
    return bytes(buf)


def redact_stream(chunks: Iterable[bytes], file: str, report: RedactionReport) -> Iterator[bytes]:
    """Line-redact a stream of chunks; yields redacted chunks (possibly empty ones)."""
    redactor = LineRedactor(file, report)
    for chunk in chunks:
        yield redactor.feed(chunk)
    yield redactor.close()


def looks_secret(value: str) -> str | None:
    """Name of the rule that makes ``value`` look like a secret, or None.

    High-entropy: 20+ token characters mixing upper case, lower case and digits with at least
    3.5 bits of entropy per character (random base64/alphanumeric keys), or 32+ hex digits.
    Lower-case-only values such as pod host names are deliberately not caught.
    """
    value = value.strip().strip("\"'")
    data = value.encode()
    for pattern in _VALUE_PATTERNS:
        if pattern.regex.search(data):
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


# A variable, flag or key name with a secret word in it (used for the environment allowlist).
SECRET_NAME: Final = re.compile(rf"(?:{_SECRET_WORDS})", re.IGNORECASE)
_TOKEN_CHARS: Final = re.compile(r"^[A-Za-z0-9+/=_.~-]+$")
_HEX: Final = re.compile(r"^[0-9a-fA-F]+$")
