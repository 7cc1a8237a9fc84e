"""A refused port reported on one connection of a tunnel is the refusal of its siblings too.

The kubelet may end the whole port-forward websocket after one connection's dial is refused; the
other connections then end without an error of their own. They were dialled to the same port, so
the refusal is theirs: ``_refused_message`` names the fix (the pprof port) for every one of them,
and does not wait out its grace for an error frame that can no longer come.
"""

from __future__ import annotations

from debugcap.kube import portforward

REFUSED = "error forwarding port 6999 to pod 1f2e, uid : failed to execute portforward in network namespace: " \
          "dial tcp4 127.0.0.1:6999: connect: connection refused"


class Tunnel:
    target = 'port 6999 of pod "goapp" in namespace "ns"'

    def __init__(self) -> None:
        self.finished = False
        self.connections: list[portforward._Connection] = []

    def first_error(self) -> str:
        return next((c.error for c in self.connections if c.error), "")


def test_a_sibling_closed_without_an_error_takes_the_refusal_of_its_tunnel() -> None:
    tunnel = Tunnel()
    first, second = (portforward._Connection(tunnel, i) for i in range(2))  # type: ignore[arg-type]
    tunnel.connections = [first, second]
    first.fail(REFUSED)  # the error frame of the refused dial
    tunnel.finished = True  # the kubelet ended the websocket: the reader fails every connection
    second.fail("")
    message, refused = portforward._refused_message(second, tunnel.target,
                                                     ConnectionResetError("Remote end closed"),
                                                     deadline=float("inf"))
    assert refused and "connection refused" in message and "debugcap.io/pprof-port" in message


def test_a_tunnel_that_ended_with_no_error_at_all_is_no_refusal() -> None:
    tunnel = Tunnel()
    only = portforward._Connection(tunnel, 0)  # type: ignore[arg-type]
    tunnel.connections = [only]
    tunnel.finished = True
    only.fail("")
    message, refused = portforward._refused_message(only, tunnel.target, ConnectionResetError("Remote end closed"),
                                                     deadline=float("inf"))
    assert not refused and message.startswith("cannot reach")
