"""An admin pattern's whole match is masked when a line over the redactor's line cap is cut inside
or right before it (issue 16 review): the next piece starts with the end of the previous one as
read-only context, and a whole match starts there; built-in detectors' secrets start after their
prefix, so only admin patterns need the match's part in the new piece masked.
"""

from __future__ import annotations

from debugcap.bundle import redact_custom
from debugcap.bundle.redact import RedactionReport, redact_stream

HEX = b"0123456789abcdef" * 2 + b"01234567"


def _chunks(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_a_whole_match_after_a_forced_cut_is_masked() -> None:
    # One JSON log line of 1.1 MB: the redactor cuts it after the last delimiter in its second
    # half, the space before the token's hex.
    line = b'{"log":"' + b"y" * 1_114_084 + b" Tenant " + HEX + b"w" * 2000 + b'"}\n'
    detectors = redact_custom.compile_patterns([("tenant", r"Tenant [0-9a-f]{40}")], where="test")
    report = RedactionReport()
    out = b"".join(redact_stream(_chunks(line), "logs/a.log", report, detectors))
    assert HEX not in out and HEX[8:] not in out
    assert [r.redactor for r in report.records] == ["custom:tenant"]
    assert out.endswith(b"w" * 2000 + b'"}\n')


def test_a_match_wholly_in_the_context_is_left_to_its_own_piece() -> None:
    # Masked once, in the piece where it starts and ends, and counted once.
    token = b"Tenant " + HEX
    text = b"a " * 10 + token + b" b\n" + b"c" * 100 + b"\n"
    detectors = redact_custom.compile_patterns([("tenant", r"Tenant [0-9a-f]{40}")], where="test")
    report = RedactionReport()
    out = b"".join(redact_stream(_chunks(text, 7), "logs/a.log", report, detectors))
    assert HEX not in out and [r.line for r in report.records] == [1]
