"""Admin-supplied redaction patterns: company-specific secret formats the built-in detectors miss.

A pattern is ``{name: acme-token, regex: 'acme_[A-Za-z0-9]{32}'}``. The whole match is masked,
or only its named group ``secret`` when it has one (``'acme-key=(?P<secret>[0-9a-f]{40})'``
keeps ``acme-key=``). Each masked span is recorded in the manifest as (file, line,
``custom:<name>``), never its value.

They come from the operator's ``DEBUGCAP_OPERATOR_REDACTION_PATTERNS`` (the chart's
``redaction.patterns``), a DebugCaptureTemplate's ``spec.redaction.patterns`` (a template file's
``redaction.patterns``), and ``kubectl debugcap redact --patterns FILE``; docs/redact.md.

Patterns apply one line at a time: a match never crosses a newline (``[^"]+`` and ``(?s).``
stop at the end of the line), and ``^`` and ``$`` are line anchors. A match is at most
:data:`MAX_MATCH` bytes: a longer run is masked up to there (each search reads at most twice that
from where it starts, so the work over a line is linear in its length however many matches it
holds; RE2 is linear per search, not across the searches of a finditer that re-reads the rest of
the line each time).

Patterns read one byte a character (RE2's Latin-1 mode), as Python's ``re`` reads bytes: in
UTF-8 mode a byte that is not UTF-8 ends a negated class (``[^\\s"]+``) and the rest of the token
would be left. A UTF-8 literal in a regex still matches its bytes; a non-ASCII character inside
``[...]`` would stand for each of its bytes, so such a regex is refused (docs/redact.md).

Patterns are compiled with RE2 (google-re2): matching is linear in the input whatever the
pattern, so an admin's regex cannot make a capture spin on a hostile log line (Python's ``re``
backtracks: ``(a+)+$`` on a line of ``a`` never ends). RE2 has no look-around and no
back-references; a pattern using them is refused at load time, with the fix.

Errors name the pattern (its source, index and name) and the problem, never the regex: they reach
a template's status, a DebugCapture's status and Events, and a regex may spell out a secret's shape.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from debugcap import templates
from debugcap.bundle.redact import MASK
from debugcap.bundle.redact_detectors import Detector, Finder, Span
from debugcap.errors import ConfigError

PREFIX: Final = "custom:"
MAX_REGEX_LENGTH: Final = 1024
# RE2 refuses a program past its memory budget ("pattern too large"); 8 MiB holds any sane
# token format many times over (a 1024-character regex of counted repetitions stays below it),
# and bounds what each capture thread holds for its patterns.
_MAX_MEM: Final = 8 << 20
MAX_PATTERNS_FILE_BYTES: Final = 1 << 20
# Probes that a pattern matching the empty string would match somewhere in (a zero-length
# match masks nothing and would fire at every position).
_EMPTY_PROBES: Final = (b"", b"a", b"A0_- .=:/\"'\n\tz9")
# The longest match found whole; see the module docstring.
MAX_MATCH: Final = 4096
# "(?P<secret>" or "(?<secret>" not escaped: RE2 accepts the name twice and reports only the first.
_SECRET_GROUP: Final = re.compile(r"(?<!\\)(?:\\\\)*\(\?P?<secret>")

Pair = tuple[str, str]


def _options(re2: Any) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 logs parse errors to stderr; our message says it better
    options.max_mem = _MAX_MEM
    # A match never takes a newline, even one the regex names ([^"], (?s).): see the docstring.
    options.never_nl = True
    # One byte a character: see the module docstring.
    options.encoding = re2.Options.Encoding.LATIN1
    return options


def compile_pattern(name: str, regex: str, *, where: str) -> Detector:
    """One validated pattern as a :class:`Detector` named ``custom:<name>``; ``where`` names the
    source in errors (``DebugCaptureTemplate acme spec.redaction.patterns[0]``)."""
    # Imported here: only patterns need it, and its wheels need newer systems than the rest
    # (macOS 13+ for CPython 3.13+): a plugin without --patterns never loads it.
    import re2

    templates.check_redaction_pattern_name(name, where=where)
    if len(regex) > MAX_REGEX_LENGTH:
        raise ConfigError(f'{where} ("{name}"): the regex is {len(regex)} characters, more than '
                          f"{MAX_REGEX_LENGTH}; match the token's shape, not a list of known values")
    try:
        encoded = regex.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f'{where} ("{name}"): the regex holds a lone surrogate (character {exc.start}), '
                          "not a character; remove it (a YAML \\uDCxx escape, or bytes decoded wrongly)") from None
    if _non_ascii_in_class(regex):
        raise ConfigError(f'{where} ("{name}"): the regex has a non-ASCII character inside [...]; patterns '
                          "read one byte a character, so it would stand for each of its UTF-8 bytes: write "
                          "the character outside the class ((?:é|è) instead of [éè]), or its bytes as \\xNN")
    if len(_SECRET_GROUP.findall(regex)) > 1:
        raise ConfigError(f'{where} ("{name}"): the regex has more than one group named "secret", and only '
                          "the first would be masked; keep one (?P<secret>...), or split the alternatives "
                          "into patterns of their own")
    try:
        # (?m): ^ and $ are line anchors (the module docstring); never_nl keeps a match on its line.
        compiled = re2.compile(b"(?m)" + encoded, _options(re2))
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        # RE2's reason quotes the offending part of the regex ("missing ): (abc"): keep only its kind.
        raise ConfigError(
            f'{where} ("{name}"): the regex is not valid RE2 syntax ({reason.split(":")[0]}); '
            "RE2 has no look-around ((?=, (?!, (?<=, (?<!) and no back-references (\\1): match the token "
            "itself, and use a named group (?P<secret>...) to mask only part of the match "
            "(https://github.com/google/re2/wiki/Syntax)") from None
    group = compiled.groupindex.get(b"secret", 0)
    if any(_empty_match(compiled, group, probe) for probe in _EMPTY_PROBES):
        raise ConfigError(f'{where} ("{name}"): the regex can match an empty string, which masks nothing; '
                          "require at least one character (+ instead of *, no empty alternative)")
    return Detector(PREFIX + name, _finder(compiled, group))


def _non_ascii_in_class(regex: str) -> bool:
    """Whether a character class (``[...]``, escapes and ``[:alpha:]`` read) holds a non-ASCII
    character; ``\\Q...\\E`` outside a class is literal text."""
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            if not in_class and regex.startswith("Q", i + 1):
                end = regex.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if in_class and i + 1 < n and not regex[i + 1].isascii():
                return True
            i += 2
        elif not in_class:
            if c == "[":
                in_class = True
                i += 2 if regex.startswith("^", i + 1) else 1
                if regex.startswith("]", i):  # a ] first is a literal
                    i += 1
                continue
            i += 1
        elif not c.isascii():
            return True
        elif c == "]":
            in_class, i = False, i + 1
        elif regex.startswith("[:", i):
            end = regex.find(":]", i + 2)
            i = i + 1 if end < 0 else end + 2
        else:
            i += 1
    return False


def _empty_match(compiled: Any, group: int, probe: bytes) -> bool:
    for match in compiled.finditer(probe):
        start, end = match.span(group)
        if start >= 0 and start == end:
            return True
    return False


def _matches(compiled: Any, data: bytes, low: int, high: int) -> Iterator[Any]:
    """The matches of ``compiled`` in ``data[low:high]``, each search reading at most
    ``2 * MAX_MATCH`` bytes: a window with no match moves on by ``MAX_MATCH``, so a match up to that
    long starting anywhere is found whole. ``data`` stays the context: ^, $ and \\b see the bytes
    around a window. Windows are not cut at newlines (a search per line costs a Python call per
    line): never_nl keeps a match on its line.

    A match that ends where its window does, short of ``high``, may have been cut there (``acme_\\w+``
    on a token across the edge): it is searched again from its start with a whole window. That
    second search reads at most ``2 * MAX_MATCH`` bytes, and only when the first reached its
    window's end, and its match is kept only when it ends no earlier, so ``pos`` then moves past
    that end: at most twice the bytes of the first searches, still linear in ``high - low``."""
    search = compiled.search
    pos = low
    while pos < high:
        window = min(high, pos + 2 * MAX_MATCH)
        match = search(data, pos, window)
        if match is None:
            if window == high:
                return
            pos += MAX_MATCH
            continue
        start, end = match.span()
        if end == window < high and start > pos:
            again = search(data, start, min(high, start + 2 * MAX_MATCH))
            if again is not None and again.end() >= end:
                match = again
                start, end = match.span()
        newline = data.find(b"\n", start, end)
        if newline >= 0:
            # \C (any byte) takes a newline even with never_nl: read that match's line alone.
            match = search(data, start, newline)
            if match is None:
                pos = newline + 1
                continue
            start, end = match.span()
        yield match
        pos = end if end > start else end + 1


def _backslashes_before(data: bytes, pos: int, floor: int) -> int:
    """How many backslashes end ``data[floor:pos]`` (the whole run, read back in slices: its
    parity says whether the byte at ``pos`` is escaped)."""
    count = 0
    while pos > floor:
        chunk = data[max(floor, pos - 64) : pos]
        run = len(chunk) - len(chunk.rstrip(b"\\"))
        count += run
        if run < len(chunk):
            break
        pos -= run
    return count


def _finder(compiled: Any, group: int) -> Finder:
    def find(data: bytes, low: int, high: int) -> Iterator[Span]:
        for match in _matches(compiled, data, low, high):
            start, end = match.span(group)
            if start < 0 or end <= start:
                continue  # the group took no part in this match: nothing to mask
            if end - start > 2 and data[start] == data[end - 1] and data[start] in b"\"'":
                # A quoted value ('"acme_[a-z]+"'): the quotes stay, so a JSON or YAML string stays one.
                start, end = start + 1, end - 1
            if not data[start:end].replace(MASK, b"").strip(b"*\"' "):
                continue  # a mask already (a built-in detector, or a bundle redacted again)
            # JSON escapes: a span starting right after an escaping backslash would leave "\***",
            # an invalid escape: mask the backslash too. One ending in an escaping backslash would
            # take the escape from the byte after it (a quote would end the string): keep that one.
            if _backslashes_before(data, start, low) % 2:
                start -= 1
            if _backslashes_before(data, end, start) % 2:
                end -= 1
            if end > start:
                yield start, end

    return find


def compile_patterns(pairs: Iterable[Pair], *, where: str) -> tuple[Detector, ...]:
    """Detectors for (name, regex) pairs, in order; the same pair given twice (the operator's
    setting and a template) runs once. Errors name ``where``, the pattern and the fix."""
    seen: dict[str, str] = {}
    detectors: list[Detector] = []
    for index, (name, regex) in enumerate(pairs):
        if seen.get(name) == regex:
            continue
        if name in seen:
            raise ConfigError(f'{where}[{index}]: pattern "{name}" is defined twice with different regexes '
                              "(the operator's DEBUGCAP_OPERATOR_REDACTION_PATTERNS and the template, or "
                              "twice in one list); give one of them another name")
        seen[name] = regex
        detectors.append(_compiled(name, regex, f"{where}[{index}]"))
    return tuple(detectors)


def check_against(first: Sequence[Pair], second: Sequence[Pair], *, first_source: str, second_source: str) -> None:
    """Refuse a pattern of ``second`` (a template's) that ``first`` (the operator's setting, or
    ``--patterns``) names with another regex: both sources apply to every capture, so the two
    would collide at each one; checked where the template is, so it shows there, not as failed
    captures. The same name and regex is the same pattern, run once."""
    regexes = dict(first)
    for index, (name, regex) in enumerate(second):
        if name in regexes and regexes[name] != regex:
            raise ConfigError(f'{second_source}[{index}] ("{name}"): {first_source} has a pattern "{name}" '
                              "with another regex; both apply to every capture and the first one may not be "
                              "replaced: give this one another name (or drop it: the other applies anyway)")


@functools.lru_cache(maxsize=256)  # every capture of a template compiles the same patterns
def _compiled(name: str, regex: str, where: str) -> Detector:
    return compile_pattern(name, regex, where=where)


def parse_document(text: str, *, source: str) -> tuple[Pair, ...]:
    """Patterns from a YAML or JSON document: a list of ``{name, regex}``, or a mapping with
    ``patterns:`` holding that list (a template's ``redaction:`` block). Validated and compiled
    once here, so a bad file is refused where it is read."""
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{source} is not valid YAML or JSON: {exc}; write a list of "
                          "{name: ..., regex: ...} mappings") from None
    except RecursionError:
        # PyYAML composes nested collections recursively: '[' * 100000 exhausts the stack.
        raise ConfigError(f"{source} is not valid YAML or JSON: nested too deeply; write a list of "
                          "{name: ..., regex: ...} mappings") from None
    if raw is None:
        return ()
    if isinstance(raw, dict):
        unknown = sorted(str(k) for k in raw if k != "patterns")
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r}; write a list of {{name, regex}} "
                              "mappings, or a mapping with patterns: [...]")
        raw = raw.get("patterns")
    pairs = templates.parse_redaction_patterns(raw, where=source)
    compile_patterns(pairs, where=source)
    return pairs


def read_file(path: Path, *, source: str) -> tuple[Pair, ...]:
    """:func:`parse_document` of a file (at most 1 MiB); ``source`` names the setting or flag."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PATTERNS_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {path}: {exc.strerror or exc}; give a readable YAML or "
                          "JSON file of {name, regex} patterns") from None
    if len(data) > MAX_PATTERNS_FILE_BYTES:
        raise ConfigError(f"{source}: {path} is larger than 1 MiB; it holds patterns, not data")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: {path} is not UTF-8 text (byte offset {exc.start}); save it as "
                          "UTF-8 (a regex names other bytes as \\xNN)") from None
    return parse_document(text, source=f"{source} ({path})")


def from_setting(value: str, *, source: str) -> tuple[Pair, ...]:
    """An operator setting's patterns: the document inline when it starts with ``[`` or ``{``
    (JSON, or YAML flow style), else the path of a file (the chart mounts a ConfigMap)."""
    value = value.strip()
    if not value:
        return ()
    if value.startswith(("[", "{")):
        return parse_document(value, source=source)
    return read_file(Path(value), source=source)


def describe(pairs: Sequence[Pair]) -> str:
    """Names, for a status or log line (never the regexes: they may describe a secret's shape)."""
    return ", ".join(PREFIX + name for name, _ in pairs)
