"""auto's probe of a pod that trickles its answer, against local servers (the pod, and an API server
relaying pods/proxy).

Cases: a body that cannot be Go's pprof index (a trickle of zero bytes, as goapp's GOAPP_HOSTILE=trickle
sends) ends the probe at its next bytes, named in httpFallback, not at the probe's timeout; each probe
waits PROBE_SECONDS at most, pods/proxy's too (it waited 10 s); the probes together keep within the
pod's deadline, and a transport left no time is not tried. Budgets are read from the timeouts the
probes were given and from an injected clock, never from how long the test took.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest
from kubernetes import client as k8s
from local_http import Server

from debugcap import templates
from debugcap.capture import transport
from debugcap.collectors import base
from debugcap.kube import podhttp, portforward
from debugcap.kube.client import Kube
from debugcap.kube.portforward import HttpResult
from debugcap.settings import CaptureSettings

STALL = 30.0  # how long a trickle goes on unless the client hangs up: reached only when a test fails


def _trickle(conn: socket.socket, every: float = 0.05) -> None:
    """"200, application/octet-stream", then one zero byte every ``every`` seconds until the
    client closes the connection."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    stop = time.monotonic() + STALL
    while time.monotonic() < stop:
        conn.sendall(b"\0")
        time.sleep(every)


@pytest.fixture
def trickles() -> Iterator[Callable[[], Server]]:
    made: list[Server] = []

    def make() -> Server:
        made.append(Server(_trickle))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def timeouts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """The timeout each probe's GET was given, by transport."""
    given: list[tuple[str, float]] = []
    real = podhttp.Pool.get

    def get(self: podhttp.Pool, path: str, sink: IO[bytes], *, timeout: float = 60.0, **kw: Any) -> HttpResult:
        given.append((self.kind, timeout))
        return real(self, path, sink, timeout=timeout, **kw)

    monkeypatch.setattr(podhttp.Pool, "get", get)
    return given


def _target(port: int) -> base.Target:
    return base.Target(namespace="prod", pod="api-1", container="app", pprof_port=port, pod_ip="127.0.0.1")


def _kube(port: int) -> Kube:
    return Kube(configuration=k8s.Configuration(host=f"http://127.0.0.1:{port}"))


def _fallback(auto: transport.Auto) -> dict[str, str]:
    """Why each cheaper transport was skipped, by name."""
    return dict(skipped.split(": ", 1) for skipped in auto._skipped)


def test_a_trickling_pod_is_given_up_at_its_first_bytes_through_each_transport(
        trickles: Callable[[], Server], timeouts: list[tuple[str, float]]) -> None:
    pod, api = trickles(), trickles()  # the API server relays the pod's trickle through pods/proxy
    auto = transport.Auto(_kube(api.port), _target(pod.port), forwards=1, in_cluster=True)
    try:
        chosen = auto.chosen()
        assert isinstance(chosen, portforward.Pool)  # not probed: the choice ends here
        fallback = _fallback(auto)
    finally:
        auto.close()
    stopped = "GET /debug/pprof/ answered, but not with the pprof index (it began b'\\x00'); stopped there"
    assert fallback["direct"].startswith(stopped) and fallback["proxy"].startswith(stopped), fallback
    # Each probe had the short budget (pods/proxy had 10 s), and hung up rather than wait it out.
    assert timeouts == [("direct", transport.PROBE_SECONDS), ("proxy", transport.PROBE_SECONDS)]
    assert transport.PROBE_SECONDS <= 3.0
    assert pod.dropped.wait(STALL) and api.dropped.wait(STALL)


def test_a_short_answer_that_is_not_the_index_still_names_its_status() -> None:
    """A 404 comes whole in one write: the probe reads it to its end and names its status."""
    sink = transport._Sniff()
    sink.write(b"404 page not found\n")
    assert sink.first == b"404 page not found"[:16]  # noted, but the GET goes on to its status
    with pytest.raises(transport._NotIndex):
        sink.write(b"more")  # more after the verdict: stopped
    index = transport._Sniff()
    index.write(b"<html>\n<head>\n<title>/debug/pprof/</title>" + b" " * transport.SNIFF_BYTES)
    index.write(b"Types of profiles available")
    assert index.first is None
    html = transport._Sniff()
    html.write(b"<html>" + b"x" * transport.SNIFF_BYTES)  # another server's page, past the sniff
    with pytest.raises(transport._NotIndex):
        html.write(b"x")


class Clock:
    """Monotonic seconds that move only when a probe ends (by ``step`` each; see the test)."""

    def __init__(self, step: float) -> None:
        self.step, self.seconds = step, 100.0

    def __call__(self) -> float:
        return self.seconds


def test_the_probes_keep_within_the_pods_deadline(trickles: Callable[[], Server],
                                                  timeouts: list[tuple[str, float]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 4 s deadline, direct may take 3 s, and pods/proxy what is left of the 4 after the
    direct probe's (injected) 2.5 s; with none left it is not tried."""
    pod, api = trickles(), trickles()
    clock = Clock(step=2.5)
    probe = transport.probe

    def probe_taking_time(pool: podhttp.Pool, timeout: float) -> str:
        why = probe(pool, timeout)
        clock.seconds += clock.step
        return why

    monkeypatch.setattr(transport, "probe", probe_taking_time)
    auto = transport.Auto(_kube(api.port), _target(pod.port), forwards=1, in_cluster=True, deadline_seconds=4.0,
                          now=clock)
    try:
        assert isinstance(auto.chosen(), portforward.Pool)
    finally:
        auto.close()
    assert timeouts == [("direct", 3.0), ("proxy", 1.5)]
    clock.step = 5.0
    timeouts.clear()
    auto = transport.Auto(_kube(api.port), _target(pod.port), forwards=1, in_cluster=True, deadline_seconds=4.0,
                          now=clock)
    try:
        assert isinstance(auto.chosen(), portforward.Pool)
        fallback = _fallback(auto)
    finally:
        auto.close()
    assert timeouts == [("direct", 3.0)]  # no time was left for pods/proxy
    assert fallback["proxy"] == "not tried: the pod's deadline of 4 s passed while choosing"


def test_http_pool_bounds_autos_choice_by_the_pods_deadline() -> None:
    template = templates.ExpandedTemplate(name="t", description="", parameters={},
                                          steps=(templates.Step(collector="expvar", params={}),))
    pool = transport.http_pool(_kube(1), _target(1), CaptureSettings(capture_timeout_seconds=7.0), template)
    assert isinstance(pool, transport.Auto) and pool.deadline_seconds == 7.0
