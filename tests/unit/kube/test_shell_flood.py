"""A shell session flooded after its end marker stops reading and is dropped (issue 16).

A process the command left behind may go on writing to the session's stdout or stderr after
the markers: that cost ~300 MB (each frame was appended to what came after the marker) and a
core for 30 s. Now at most AFTER_BYTES are kept after a marker; more ends the read and breaks
the session (it is not reused). Bounded by construction: the stand-in stream counts the frames
taken, and the scanner's buffer is checked after each feed; nothing is timed.
"""

from __future__ import annotations

import io
import re

from debugcap.kube import exec as kexec
from debugcap.kube import shell

NONCE = b"__debugcap_00112233445566778899aabbccddeeff_"
FLOOD = b"y\n" * (32 << 10)


def test_what_follows_a_marker_is_bounded() -> None:
    scan = shell._Until(NONCE + b"rc=", lambda _b: None)
    scan.feed(b"out" + NONCE + b"rc=0\n")
    assert not scan.overflow
    for _ in range(100):
        scan.feed(FLOOD)
        assert len(scan.after) <= shell.AFTER_BYTES
    assert scan.overflow and scan.after.startswith(b"0\n")


class FloodingStream:
    """The exec stream of a shell whose command printed 'hello', its exit code, then floods stdout."""

    where = 'container "app" of pod "p"'

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.taken = 0
        self.closed = False

    def write_stdin(self, data: bytes) -> None:
        m = re.search(rb"__debugcap_run (\S+) ", data)
        assert m is not None
        self.frames = [(kexec.STDOUT_CHANNEL, b"hello" + m.group(1) + b"rc=0\n")]

    def frame(self, wait: float) -> tuple[int, bytes] | None:
        self.taken += 1
        return self.frames.pop(0) if self.frames else (kexec.STDOUT_CHANNEL, FLOOD)

    def close(self) -> None:
        self.closed = True


def test_a_flood_after_the_exit_code_ends_the_read_and_breaks_the_session() -> None:
    session = object.__new__(shell.Session)
    session.kube, session.namespace, session.pod, session.container = None, "ns", "p", "app"
    session.broken, session._defined = False, True
    session._stream = stream = FloodingStream()  # type: ignore[assignment]
    out = io.BytesIO()
    res = session.run(["cat", "x"], stdout=out, stderr=io.BytesIO(), timeout=3600, max_bytes=1 << 20)
    assert out.getvalue() == b"hello" and res.exit_code == 0 and not res.timed_out
    assert session.broken and stream.taken == 2  # the first flood frame past the marker ended it


class DoneThenFloodStream(FloodingStream):
    """Both markers arrive, the stdout one in the same frame as a flood that followed it."""

    def write_stdin(self, data: bytes) -> None:
        m = re.search(rb"__debugcap_run (\S+) ", data)
        assert m is not None
        nonce = m.group(1)
        self.frames = [(kexec.STDERR_CHANNEL, nonce + b"end\n"),
                       (kexec.STDOUT_CHANNEL, b"hello" + nonce + b"rc=0\n" + FLOOD)]


def test_a_flood_in_the_frame_that_ended_the_command_still_breaks_the_session() -> None:
    session = object.__new__(shell.Session)
    session.kube, session.namespace, session.pod, session.container = None, "ns", "p", "app"
    session.broken, session._defined = False, True
    session._stream = DoneThenFloodStream()  # type: ignore[assignment]
    res = session.run(["cat", "x"], stdout=io.BytesIO(), stderr=io.BytesIO(), timeout=3600, max_bytes=1 << 20)
    assert res.exit_code == 0 and session.broken  # not reused: the flood would reach the next command
