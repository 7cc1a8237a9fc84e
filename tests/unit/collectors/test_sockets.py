"""Counting sockets per TCP state from /proc/net/tcp and tcp6 text.

Cases: the header line is skipped; states are hex codes mapped to their kernel names (upper and
lower case); tcp6 lines (longer addresses) count the same way; unknown codes are kept visible,
not dropped; blank and short lines are ignored.
"""

from __future__ import annotations

from debugcap.collectors import sockets
from debugcap.formats import procfs

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
TCP = [
    HEADER,
    "   0: 0100007F:17AC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0",
    "   1: 0100007F:17AD 0100007F:8F3A 01 00000000:00000000 00:00000000 00000000     0        0 1235 1 0",
    "   2: 0100007F:17AD 0100007F:8F3B 01 00000000:00000000 00:00000000 00000000     0        0 1236 1 0",
    "   3: 0100007F:17AD 0100007F:8F3C 06 00000000:00000000 03:00000FA0 00000000     0        0 0 3 0",
    "   4: 0100007F:17AD 0100007F:8F3D 08 00000000:00000000 00:00000000 00000000     0        0 1238 1 0",
    "   5: 0100007F:17AD 0100007F:8F3E 0a 00000000:00000000 00:00000000 00000000     0        0 1239 1 0",
]
TCP6 = [
    HEADER,
    "   0: 00000000000000000000000000000000:17AC 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000     0        0 2234 1 0",
    "   1: 0000000000000000FFFF00000100007F:17AC 0000000000000000FFFF00000100007F:9A10 06 00000000:00000000 "
    "03:00000FA0 00000000     0        0 0 3 0",
]


def test_states_are_counted_by_kernel_name_and_header_is_skipped() -> None:
    counts = sockets.count_states(TCP)
    assert counts == {"LISTEN": 2, "ESTABLISHED": 2, "TIME_WAIT": 1, "CLOSE_WAIT": 1}


def test_tcp6_lines_count_the_same_way() -> None:
    assert sockets.count_states(TCP6) == {"LISTEN": 1, "TIME_WAIT": 1}


def test_unknown_state_code_stays_visible() -> None:
    line = "   0: 0100007F:17AC 00000000:0000 1F 00000000:00000000 00:00000000 00000000     0        0 1 1 0"
    assert sockets.count_states([HEADER, line]) == {"UNKNOWN_1F": 1}


def test_blank_and_short_lines_are_ignored() -> None:
    assert sockets.count_states(["", "   ", "0: x y", HEADER]) == {}


def test_every_kernel_state_code_has_a_name() -> None:
    # include/net/tcp_states.h: 1..12
    assert sorted(procfs.TCP_STATES) == list(range(1, 13))
    lines = [f"{i}: a b {code:02X} rest" for i, code in enumerate(procfs.TCP_STATES)]
    assert set(sockets.count_states(lines)) == set(procfs.TCP_STATES.values())
