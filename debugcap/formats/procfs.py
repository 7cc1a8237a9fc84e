"""Parsers for small ``/proc`` files: the fd count, ``/proc/<pid>/limits`` and ``/proc/net/tcp``.

Callers: :mod:`debugcap.collectors.sockets` counts TCP states while collecting, and
:mod:`debugcap.analysis.sections` reads the same files out of a finished bundle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

# /proc/net/tcp "st" column (include/net/tcp_states.h).
TCP_STATES: Final[Mapping[int, str]] = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
    7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
}

_OPEN_FILES = re.compile(r"^Max open files\s+(\d+|unlimited)", re.MULTILINE)


def parse_fd_count(text: str) -> int | None:
    """The first number in the text (the fd-count collector writes just that number)."""
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None


def parse_open_files_limit(text: str) -> int | None:
    """The soft "Max open files" limit of a ``/proc/<pid>/limits`` table; None when unlimited."""
    m = _OPEN_FILES.search(text)
    return int(m.group(1)) if m and m.group(1).isdigit() else None


def parse_proc_net_tcp(lines: Iterable[str]) -> dict[str, int]:
    """Sockets per TCP state in /proc/net/tcp or tcp6 lines; the header and junk lines are skipped."""
    counts: dict[str, int] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(":"):
            continue
        try:
            code = int(fields[3], 16)
        except ValueError:
            continue
        state = TCP_STATES.get(code, f"UNKNOWN_{fields[3].upper()}")
        counts[state] = counts.get(state, 0) + 1
    return counts
