"""``sockets``: the socket table, the kernel's /proc/net tables and counts per TCP state.

(test_sockets.py tests the state counting alone; this drives the whole collector.)
Cases: ``ss``, /proc/net/tcp, tcp6 and sockstat outputs are stored under their net paths and
the states counted from the recorded tables land in net/socket-states.json; without ``ss``,
busybox ``netstat -tunap`` (no ``-p``) is passed over for ``netstat -tuna``; ``state_counts:
false`` writes no counts; no readable /proc/net table means no counts file.
"""

from __future__ import annotations

import json

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.sockets import SocketsCollector


def _answer_proc(shell) -> None:
    shell.answer(["cat", "/proc/net/tcp"], "exec/proc-net-tcp.txt")
    shell.answer(["cat", "/proc/net/tcp6"], "exec/proc-net-tcp6.txt")
    shell.answer(["cat", "/proc/net/sockstat"], "exec/proc-net-sockstat.txt")


def test_tables_are_stored_and_states_counted_from_the_recorded_ones(bundle, shell, data) -> None:
    shell.answer(["ss", "-tunap"], "exec/ss-tunap.txt")
    _answer_proc(shell)
    result = SocketsCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert result.files == (layout.NET_SOCKETS, layout.NET_PROC_TCP, layout.NET_PROC_TCP6, layout.NET_SOCKSTAT,
                            layout.NET_SOCKET_STATES)
    assert bundle.files[layout.NET_SOCKETS] == data("exec/ss-tunap.txt")
    assert bundle.files[layout.NET_PROC_TCP] == data("exec/proc-net-tcp.txt")
    assert bundle.files[layout.NET_PROC_TCP6] == data("exec/proc-net-tcp6.txt")
    assert bundle.files[layout.NET_SOCKSTAT] == data("exec/proc-net-sockstat.txt")
    # The recorded app listens on 6060 and 6061 and holds both ends of two idle connections.
    counts = json.loads(bundle.files[layout.NET_SOCKET_STATES])
    assert counts == {"states": {"ESTABLISHED": 4, "LISTEN": 2}, "tcp": {"ESTABLISHED": 4, "LISTEN": 2},
                      "tcp6": {}}


def test_without_ss_busybox_netstat_without_p_falls_back_to_tuna_with_listeners(bundle, shell, data) -> None:
    shell.answer(["ss", "-tunap"], stderr="exec/sh-ss-not-found.err", exit_code=127)
    shell.answer(["netstat", "-tunap"], stderr="exec/busybox-netstat-tunap.err", exit_code=1)
    shell.answer(["netstat", "-tuna"], "exec/busybox-netstat-tuna.txt")
    _answer_proc(shell)
    result = SocketsCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert shell.ran[:3] == [("ss", "-tunap"), ("netstat", "-tunap"), ("netstat", "-tuna")]
    # -a: the listening sockets are there, not only the established ones.
    assert b"LISTEN" in bundle.files[layout.NET_SOCKETS]
    assert bundle.files[layout.NET_SOCKETS] == data("exec/busybox-netstat-tuna.txt")


def test_state_counts_false_writes_no_counts(bundle, shell) -> None:
    shell.answer(["ss", "-tunap"], "exec/ss-tunap.txt")
    _answer_proc(shell)
    result = SocketsCollector().collect(bundle.context(commands=shell, params={"state_counts": False}))
    assert result.status is base.Status.OK
    assert layout.NET_SOCKET_STATES not in bundle.files


def test_no_proc_net_tables_means_no_counts_file(bundle, shell) -> None:
    shell.answer(["ss", "-tunap"], "exec/ss-tunap.txt")
    for table in ("tcp", "tcp6", "sockstat"):
        shell.answer(["cat", f"/proc/net/{table}"], stderr="exec/sh-lsof-not-found.err", exit_code=127)
    result = SocketsCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.PARTIAL
    assert set(bundle.files) == {layout.NET_SOCKETS}
