"""A collector's message leaves the bundle (manifest, the DebugCapture's status, its Events) and
may quote a pod's answer: what a terminal would obey is escaped there, where it is made."""

from __future__ import annotations

from debugcap.collectors.base import CollectorResult, Status


def test_escape_sequences_from_a_pod_are_escaped_line_breaks_kept() -> None:
    body = "HTTP 500: \x1b[2J\x1b]52;c;Y3VybA==\x07cleared\nnext line\tand a tab \x9b1m"
    message = CollectorResult(Status.FAILED, body).message
    assert not any(ch in message for ch in "\x1b\x07\x9b"), message
    assert message == "HTTP 500: \\x1b[2J\\x1b]52;c;Y3VybA==\\x07cleared\nnext line\tand a tab \\x9b1m"


def test_plain_messages_are_unchanged() -> None:
    assert CollectorResult(Status.OK, "cut at 67108864 bytes").message == "cut at 67108864 bytes"
