"""Framing of commands in a shell session, on bytes: markers split anywhere between frames."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from debugcap.kube import shell

NONCE = b"__debugcap_00112233445566778899aabbccddeeff_"


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_output_before_the_marker_passes_whole_however_it_is_split(payload: bytes, cuts: list[int]) -> None:
    seen: list[bytes] = []
    scan = shell._Until(NONCE + b"rc=", seen.append)
    for part in chunks(payload + NONCE + b"rc=7\n", cuts):
        scan.feed(part)
    assert scan.found and b"".join(seen) == payload and scan.after == b"7\n"


def test_a_partial_marker_in_the_output_is_output() -> None:
    seen: list[bytes] = []
    scan = shell._Until(NONCE + b"rc=", seen.append)
    scan.feed(NONCE[:20] + b"!" + NONCE)
    scan.feed(b"rc=0\n")
    assert b"".join(seen) == NONCE[:20] + b"!" and scan.after == b"0\n"


@given(st.binary(max_size=200).filter(lambda b: NONCE not in b),
       st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_pid_line_is_taken_off_stderr(payload: bytes, cuts: list[int]) -> None:
    seen: list[bytes] = []
    pid = shell._PidLine(NONCE, seen.append)
    for part in chunks(NONCE + b"pid=4242\n" + payload, cuts):
        pid.feed(part)
    assert pid.pid == 4242 and b"".join(seen) == payload


def test_stderr_without_a_pid_line_is_all_stderr() -> None:
    seen: list[bytes] = []
    pid = shell._PidLine(NONCE, seen.append)
    pid.feed(b"sh: can't fork\n")
    pid.feed(NONCE + b"end\n")
    assert pid.pid is None and b"".join(seen) == b"sh: can't fork\n" + NONCE + b"end\n"


def test_our_end_marker_alone_is_not_taken_for_a_pid_line() -> None:
    seen: list[bytes] = []
    pid = shell._PidLine(NONCE, seen.append)
    pid.feed(NONCE + b"end\n")
    assert pid.pid is None and b"".join(seen) == NONCE + b"end\n"
