"""Rule close-wait: MIN_SOCKETS or more sockets in CLOSE_WAIT point at a missing Close."""

from __future__ import annotations

from debugcap.analysis import model
from debugcap.analysis.findings import close_wait

from .reports import kinds, messages, report


def _sockets(close_waits: int) -> model.Sockets:
    return model.Sockets(source="net/proc-net-tcp.txt", states={"ESTABLISHED": 3, "CLOSE_WAIT": close_waits})


def test_pile_up_of_close_wait_is_a_finding() -> None:
    rep = report(sockets=_sockets(12))
    assert kinds(rep) == [("close-wait", "sockets")]
    assert messages(rep)[0].startswith("12 sockets in CLOSE_WAIT")


def test_a_few_close_wait_sockets_are_not() -> None:
    assert kinds(report(sockets=_sockets(close_wait.MIN_SOCKETS - 1))) == []
