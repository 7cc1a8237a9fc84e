"""``/proc`` parsers: the fd count, the open-files limit and TCP states of /proc/net/tcp{,6}.

Cases: a count with a newline, no number; a numeric and an unlimited limit, no limit
line; every state code of tcp_states.h, an unknown code, the header and junk lines.
"""

from __future__ import annotations

import pytest

from debugcap.formats import procfs

LIMITS = (
    "Limit                     Soft Limit           Hard Limit           Units\n"
    "Max cpu time              unlimited            unlimited            seconds\n"
    "Max open files            {soft:<20} 4096                 files\n"
)


@pytest.mark.parametrize(("text", "count"), [("950\n", 950), ("  12 ", 12), ("", None), ("none\n", None)],
                         ids=["number", "padded", "empty", "no-number"])
def test_fd_count_is_the_first_number(text: str, count: int | None) -> None:
    assert procfs.parse_fd_count(text) == count


@pytest.mark.parametrize(("soft", "limit"), [("1024", 1024), ("unlimited", None)], ids=["numeric", "unlimited"])
def test_open_files_limit_is_the_soft_limit(soft: str, limit: int | None) -> None:
    assert procfs.parse_open_files_limit(LIMITS.format(soft=soft)) == limit


def test_limits_without_an_open_files_line_give_no_limit() -> None:
    assert procfs.parse_open_files_limit(LIMITS.splitlines()[0]) is None


def test_every_kernel_tcp_state_is_named() -> None:
    assert sorted(procfs.TCP_STATES) == list(range(1, 13))
    lines = [f"{i}: a b {code:02X} rest" for i, code in enumerate(procfs.TCP_STATES)]
    assert procfs.parse_proc_net_tcp(lines) == {name: 1 for name in procfs.TCP_STATES.values()}


def test_proc_net_tcp_counts_states_and_skips_header_and_junk() -> None:
    lines = [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout",
        "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0",
        "   1: 0100007F:1F90 0100007F:9C01 08 00000000:00000000 00:00000000 00000000     0",
        "   2: 0100007F:1F90 0100007F:9C02 08 00000000:00000000 00:00000000 00000000     0",
        "   3: 0100007F:1F90 0100007F:9C03 2F 00000000:00000000 00:00000000 00000000     0",
        "   4: 0100007F:1F90 0100007F:9C03 ZZ",
        "",
    ]
    assert procfs.parse_proc_net_tcp(lines) == {"LISTEN": 1, "CLOSE_WAIT": 2, "UNKNOWN_2F": 1}
