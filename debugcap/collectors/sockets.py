"""Sockets: `ss -tunap` or `netstat -tunap`, the kernel's /proc/net tables, and counts per TCP state.

The counts come from /proc/net/tcp{,6}, which every Linux container has even
without ss or netstat: a TIME_WAIT or CLOSE_WAIT pile-up shows there first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable

from debugcap.bundle import layout
from debugcap.collectors import base, execution
from debugcap.formats import procfs


def count_states(lines: Iterable[str]) -> Counter[str]:
    """Count sockets per state in /proc/net/tcp or tcp6 text (the header line is skipped)."""
    return Counter(procfs.parse_proc_net_tcp(lines))


class SocketsCollector(base.Collector):
    name = "sockets"
    kind = base.Kind.EXEC
    description = "socket table (ss/netstat), /proc/net/tcp, tcp6, sockstat and counts per TCP state"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        per_family: dict[str, Counter[str]] = {}

        def counter(family: str) -> Callable[[base.Scratch], None]:
            def inspect(scratch: base.Scratch) -> None:
                per_family[family] = count_states(line.decode(errors="replace") for line in scratch.reader())
            return inspect

        results = [
            execution.run(ctx, layout.NET_SOCKETS, [["ss", "-tunap"], ["netstat", "-tunap"],
                                                           # busybox: no -p; -a keeps the listeners
                                                           ["netstat", "-tuna"]]),
            execution.run(ctx, layout.NET_PROC_TCP, [["cat", "/proc/net/tcp"]], inspect=counter("tcp")),
            execution.run(ctx, layout.NET_PROC_TCP6, [["cat", "/proc/net/tcp6"]], inspect=counter("tcp6")),
            execution.run(ctx, layout.NET_SOCKSTAT, [["cat", "/proc/net/sockstat"]]),
        ]
        if ctx.param("state_counts", True) and per_family:
            total: Counter[str] = Counter()
            for c in per_family.values():
                total.update(c)
            doc = {"states": dict(total.most_common()),
                   **{family: dict(c.most_common()) for family, c in per_family.items()}}
            ctx.add_bytes(layout.NET_SOCKET_STATES, json.dumps(doc, indent=2).encode() + b"\n")
            results.append(base.CollectorResult(base.Status.OK, "", (layout.NET_SOCKET_STATES,)))
        return base.CollectorResult.worst(results)
