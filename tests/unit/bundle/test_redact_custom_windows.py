"""Admin redaction patterns (debugcap.bundle.redact_custom) at the edges the reviewer found: a
token across an internal 8 KiB search-window edge (found whole, the bytes read still linear),
a byte that is not UTF-8 inside a token, a non-ASCII character inside [...] (refused), and a
patterns file nested too deeply (a ConfigError, not a RecursionError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from debugcap.bundle import redact, redact_custom
from debugcap.errors import ConfigError


class CountingSearch:
    """An RE2 pattern whose searches count the bytes each may read: work is measured, not timed."""

    def __init__(self, pattern: bytes) -> None:
        import re2

        self.compiled, self.read = re2.compile(pattern), 0

    def search(self, data: bytes, pos: int, endpos: int) -> object:
        self.read += endpos - pos
        return self.compiled.search(data, pos, endpos)

M = redact_custom.MAX_MATCH
OPEN = [("acme", "acme_[A-Za-z0-9]+")]  # no fixed length: a match cut at an edge still matches


def _redact(data: bytes, pairs: list[tuple[str, str]] = OPEN) -> tuple[bytes, list[str]]:
    report = redact.RedactionReport()
    detectors = redact_custom.compile_patterns(pairs, where="test patterns")
    out = b"".join(redact.redact_stream([data], "logs/app.log", report, detectors))
    return out, [r.redactor for r in report.records]


@pytest.mark.parametrize("before", [6, 9, 20, 41])
def test_a_token_across_the_window_edge_on_short_lines_is_masked_whole(before: int) -> None:
    # Short lines with no match fill the first window; the token starts `before` bytes short of
    # its end (2 * MAX_MATCH from the block's start) and runs past it.
    filler = b"GET /healthz 200 ok\n" * ((2 * M) // 20 + 1)
    head = filler[: 2 * M - before - len(b"tok=")]
    head = head[: head.rfind(b"\n") + 1]
    head += b"x" * (2 * M - before - len(b"tok=") - len(head))
    token = b"acme_" + b"S" * 40
    out, kinds = _redact(head + b"tok=" + token + b" end\n" + filler)
    assert out.find(b"tok=") == 2 * M - before - len(b"tok=")
    assert out.endswith(b"tok=***REDACTED*** end\n" + filler) and kinds == ["custom:acme"]


@pytest.mark.parametrize("offset", [2 * M - 7, 3 * M - 9, 4 * M - 11, 7 * M - 20])
def test_a_token_across_a_window_edge_in_a_line_longer_than_8_kib_is_masked_whole(offset: int) -> None:
    # Windows without a match move on by MAX_MATCH: their ends fall at k * MAX_MATCH in the line.
    token = b"acme_" + b"S" * 30
    line = b"x" * offset + b" " + token + b" end " + b"y" * (3 * M) + b"\n"
    out, kinds = _redact(line)
    assert b"S" not in out and out == b"x" * offset + b" ***REDACTED*** end " + b"y" * (3 * M) + b"\n"
    assert kinds == ["custom:acme"]


def test_the_search_again_keeps_the_bytes_read_linear_on_a_mebibyte() -> None:
    # Every window's first match straddles its end, so each costs a second search: the bytes
    # read are counted (not timed) and stay within a constant times the input.
    counting = CountingSearch(b"(?m)acme_[a-z]+")
    piece = b" " * (2 * M - 3) + b"acme_" + b"b" * 10
    line = piece * ((1 << 20) // len(piece))
    found = [m.span() for m in redact_custom._matches(counting, line, 0, len(line))]
    assert [line[s:e] for s, e in found] == [b"acme_" + b"b" * 10] * (len(line) // len(piece))
    assert counting.read <= 3 * len(line)


def test_a_byte_not_utf8_inside_a_token_does_not_end_the_match() -> None:
    out, kinds = _redact(b'tok acme_abc\xffSECRETSECRET end\n', [("acme", 'acme_[^\\s"]+')])
    assert out == b"tok ***REDACTED*** end\n" and kinds == ["custom:acme"]


def test_a_utf8_literal_still_matches_its_bytes() -> None:
    out, _ = _redact("clé=s3cr3t x\n".encode(), [("cle", "clé=(?P<secret>\\w+)")])
    assert out == "clé=***REDACTED*** x\n".encode()


@pytest.mark.parametrize("regex", ["acme_[é]+", "acme_[^\\sé]+", "x[a-z\\é]", "x[]é]", "x[[:alpha:]é]"])
def test_a_non_ascii_character_in_a_class_is_refused_naming_the_pattern(regex: str) -> None:
    with pytest.raises(ConfigError) as err:
        redact_custom.compile_patterns([("acme", regex)], where="test patterns")
    message = str(err.value)
    assert 'test patterns[0] ("acme")' in message and "outside the class" in message and regex not in message


@pytest.mark.parametrize("regex", ["é[a-z]+", "\\Q[é\\E[a-z]+", "x\\[é[a-z]", "[a-z]é", "[\\x{e9}]+"])
def test_non_ascii_outside_a_class_is_accepted(regex: str) -> None:
    redact_custom.compile_patterns([("acme", regex)], where="test patterns")


def test_a_patterns_file_nested_too_deeply_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        redact_custom.read_file(path, source="--patterns")
