"""How a capture reaches a pod's Go endpoints (pprof, trace, expvar, /metrics): one factory.

``CaptureSettings.http_transport`` picks one of three transports, or ``auto``:

* ``direct``: plain HTTP to the pod IP (:class:`debugcap.kube.podhttp.Direct`). Nothing on the
  way, no rights needed, but the caller must route to pod IPs (an operator in the cluster).
* ``proxy``: the API server's ``pods/proxy`` (:class:`debugcap.kube.podproxy.Proxy`). Needs only
  ``get pods/proxy``; one proxied request per GET through the API server.
* ``port-forward``: a websocket stream through the API server, the kubelet and the runtime
  (:class:`debugcap.kube.portforward.Pool`). Needs ``create pods/portforward``; the only one that
  reaches a server bound to 127.0.0.1.

``auto`` (:class:`Auto`) takes the cheapest that works, decided once per pod capture, at
:meth:`Auto.open` (the operator's prepare step, before the pod's turn) or else at the first GET.
Each candidate is asked for the pprof index, ``GET /debug/pprof/``, and taken only when it
answers 200 with Go's index page (a sidecar that takes the TCP connection and resets every
request, a gateway's 404, is no pprof server); its connection is kept for the capture. A probe
waits PROBE_SECONDS at most, stops at once when the body proves not to be the index (a trickle of
bytes that are not HTML), and the probes together keep within the pod's deadline. In order:
direct, only when this process runs in the cluster's own pod network (the operator's pod,
:func:`debugcap.kube.podhttp.in_cluster`); then pods/proxy; else port-forward, which is not
probed. The manifest's ``access.http`` says which was used and ``access.httpFallback`` why the
cheaper ones were not. docs/transports.md has the order, the reasons and the costs.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import IO, Protocol

from debugcap import errors, templates
from debugcap.capture import deadline
from debugcap.capture.window import SendingGets, forwards_needed
from debugcap.collectors import COLLECTORS, base
from debugcap.kube import podhttp, podproxy, portforward
from debugcap.kube.client import Kube
from debugcap.kube.portforward import HttpResult
from debugcap.settings import CaptureSettings

# Longest wait for a TCP connect to the pod IP before auto tries pods/proxy. Inside a cluster a
# connect takes a millisecond or two (cross-zone a few); a pod IP that does not answer within a
# quarter of a second is not routed from here. Judgement call: it is what a capture pays once
# per pod where pod IPs are filtered without an answer (unrouted ones fail at once).
DIRECT_PROBE_SECONDS = 0.25
# Longest wait for the pprof index, from the pod IP once connected or through pods/proxy. Go
# serves it in a millisecond and a busy API server relays it within a second or two. The operator
# probes while the pod holds a place ahead of its slot, before its deadline starts: a pod that
# trickles its answer held that place ~10 s through pods/proxy. A program too busy to answer within
# this is better reached through the next transport. 3 s: judgement call.
PROBE_SECONDS = 3.0
DIRECT_INDEX_SECONDS = PROBE_SECONDS
PROXY_PROBE_SECONDS = PROBE_SECONDS
PROBE_PATH = "/debug/pprof/"
PROBE_BYTES = 64 << 10
# Go's index page begins "<html>\n<head>\n<title>/debug/pprof/</title>". A body that does not begin
# with "<", or whose first SNIFF_BYTES name no index mark, is not the index whatever follows: the
# probe stops reading it (see _Sniff) instead of waiting out a trickle. Judgement call: 2 KiB.
SNIFF_BYTES = 2048


class Transport(SendingGets, Protocol):
    """What a capture holds to reach the Go endpoints: GETs, and its own lifetime."""

    def open(self) -> None:
        """Prepare ahead of the first GET (best effort: failures are met again by the GETs)."""

    def close(self) -> None:
        """Close every connection; GETs still running fail at once."""

    def access(self) -> dict[str, str]:
        """``{"http": "direct" | "proxy" | "port-forward"}``, for the manifest and the status."""


def to_try(in_cluster: bool) -> tuple[str, ...]:
    """The transports auto tries, in order: direct only from inside the cluster's pod network
    (elsewhere a pod IP may not route, or route to another machine); port-forward last, always."""
    return ("direct", "proxy", "port-forward") if in_cluster else ("proxy", "port-forward")


class Auto:
    """The cheapest transport that works for one pod, chosen once (see the module's doc)."""

    def __init__(self, kube: Kube, target: base.Target, *, forwards: int, in_cluster: bool | None = None,
                 direct_probe_seconds: float = DIRECT_PROBE_SECONDS,
                 proxy_probe_seconds: float = PROXY_PROBE_SECONDS, deadline_seconds: float | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        """``deadline_seconds``: the pod's (None: none); the probes together take no longer."""
        self.kube, self.target, self.forwards = kube, target, forwards
        self.deadline_seconds, self._now = deadline_seconds, now
        # None: from where this process runs (tests say it outright).
        self.in_cluster = podhttp.in_cluster(kube.configuration.host) if in_cluster is None else in_cluster
        self.direct_probe_seconds, self.proxy_probe_seconds = direct_probe_seconds, proxy_probe_seconds
        self._lock = threading.Lock()  # the state below
        self._decided = threading.Condition(self._lock)  # the choice was made, or close() came
        self._choosing = False  # a GET (or open()) is choosing; the others wait for it
        self._probing: podhttp.Pool | None = None  # the candidate being asked, which close() closes
        self._chosen: Transport | None = None
        self._skipped: list[str] = []  # why the cheaper ones were not taken
        self._closed = False

    def chosen(self) -> Transport:
        """The transport, choosing it on the first call. Calls meanwhile wait for that choice,
        and fail at once when :meth:`close` comes first, as the choice itself does."""
        with self._lock:
            while True:
                self._check_open()
                if self._chosen is not None:
                    return self._chosen
                if not self._choosing:
                    self._choosing = True
                    break
                self._decided.wait()
        chosen: Transport | None = None
        try:
            chosen = self._choose()
            with self._lock:
                if not self._closed:
                    self._chosen = chosen
                    return chosen
            chosen.close()  # closed while choosing
            self._check_open()
            raise AssertionError("unreachable")
        finally:
            with self._lock:
                self._choosing = False
                self._decided.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise errors.CollectorError(f"connections to pod {self.target.namespace}/{self.target.pod} "
                                        "closed: capture over")

    def _probe(self, pool: podhttp.Pool, timeout: float) -> str:
        """:func:`probe` with ``pool`` where :meth:`close` finds it (and closes it: the probe fails at once)."""
        with self._lock:
            if self._closed:
                pool.close()
                self._check_open()
            self._probing = pool
        try:
            return probe(pool, timeout)
        finally:
            with self._lock:
                self._probing = None
                closed = self._closed
            if closed:
                pool.close()
                self._check_open()

    def _left(self, began: float, seconds: float) -> float:
        """``seconds``, or less: what is left of the pod's deadline since the choice ``began``."""
        if self.deadline_seconds is None:
            return seconds
        return min(seconds, self.deadline_seconds - (self._now() - began))

    def _choose(self) -> Transport:
        t, began = self.target, self._now()
        for name in to_try(self.in_cluster):
            pool: podhttp.Pool
            if name != "port-forward" and self._left(began, PROBE_SECONDS) <= 0:
                self._skipped.append(f"{name}: not tried: the pod's deadline of {self.deadline_seconds:.10g} s "
                                     "passed while choosing")
                continue
            if name == "direct":
                if not t.pod_ip:
                    self._skipped.append("direct: the pod has no IP")
                    continue
                pool = podhttp.Direct(namespace=t.namespace, pod=t.pod, host=t.pod_ip, port=t.pprof_port,
                                      connect_timeout=self._left(began, self.direct_probe_seconds))
                why = self._probe(pool, self._left(began, DIRECT_INDEX_SECONDS))
                pool.connect_timeout = podhttp.DIRECT_CONNECT_SECONDS  # the capture's own connects
            elif name == "proxy":
                pool = podproxy.Proxy(self.kube, namespace=t.namespace, pod=t.pod, port=t.pprof_port)
                why = self._probe(pool, self._left(began, self.proxy_probe_seconds))
            else:
                break
            if not why:
                return pool
            pool.close()
            self._skipped.append(f"{name}: {why}")
        return portforward.Pool(self.kube, namespace=t.namespace, pod=t.pod, port=t.pprof_port, size=self.forwards)

    def open(self) -> None:
        try:
            self.chosen().open()
        except errors.DebugcapError:
            pass  # met again, and reported, by the first GET

    def get(self, path: str, sink: IO[bytes], *, timeout: float = 60.0, max_bytes: int = 256 << 20,
            sent: Callable[[], None] | None = None) -> HttpResult:
        return self.chosen().get(path, sink, timeout=timeout, max_bytes=max_bytes, sent=sent)

    def access(self) -> dict[str, str]:
        """The chosen transport's, with ``httpFallback`` when a cheaper one was skipped; nothing
        when no GET was made (a template without Go collectors; a port-forward opened ahead
        reports nothing until asked)."""
        with self._lock:
            if self._chosen is None:
                return {}
            out = dict(self._chosen.access())
            if out and self._skipped:
                out["httpFallback"] = "; ".join(self._skipped)
            return out

    def close(self) -> None:
        """Close the chosen transport, or end a choice under way: the candidate being probed is
        closed (its GET fails at once) and GETs waiting for the choice fail at once."""
        with self._lock:
            self._closed = True
            chosen, probing = self._chosen, self._probing
            self._decided.notify_all()
        for pool in (chosen, probing):
            if pool is not None:
                pool.close()


class _NotIndex(Exception):
    """Raised by :class:`_Sniff` to stop a probe's GET (its connection is then closed)."""


class _Sniff(io.BytesIO):
    """A probe's sink that stops the GET once more of the body comes after it proved not to be Go's
    index (SNIFF_BYTES). Not at the first write: a short answer (a 404's "404 page not found")
    usually comes whole in it, and then the probe names its HTTP status."""

    def __init__(self) -> None:
        super().__init__()
        self.first: bytes | None = None  # the body's first bytes, once they proved it not the index

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.first is not None:
            raise _NotIndex
        written = super().write(data)
        body = self.getvalue()
        head = body.lstrip()
        if (head and not head.startswith(b"<")) or (
                len(body) >= SNIFF_BYTES and not podhttp.looks_like_index(body[:SNIFF_BYTES])):
            self.first = body[:16]
        return written


def probe(pool: podhttp.Pool, timeout: float) -> str:
    """Ask ``pool`` for the pprof index: "" when Go's index page came back (the connection stays
    for the capture), else why not in a few words, for the manifest's httpFallback. A body that
    proves not to be the index ends the GET then (:class:`_Sniff`), not at ``timeout``."""
    sink = _Sniff()
    try:
        res = pool.get(PROBE_PATH, sink, timeout=timeout, max_bytes=PROBE_BYTES)
    except _NotIndex:
        return (f"GET {PROBE_PATH} answered, but not with the pprof index (it began {sink.first!r}); "
                "stopped there rather than read the rest")
    except errors.DebugcapError as exc:
        return _why_not(exc)
    if res.status != 200:
        return f"GET {PROBE_PATH} answered HTTP {res.status}, not the pprof index"
    if not podhttp.looks_like_index(sink.getvalue()):
        return f"GET {PROBE_PATH} answered HTTP 200 but not with the pprof index (another server on the port?)"
    return ""


def _why_not(exc: errors.DebugcapError) -> str:
    """A probe's failure, in a few words for the manifest."""
    if isinstance(exc, podproxy.ProxyForbidden):
        return f"forbidden (HTTP {exc.status}: no get rights on pods/proxy)"
    if isinstance(exc, podproxy.ProxyUnreachable) and exc.refused:
        return "the API server's connection to the pod IP was refused (server bound to 127.0.0.1?)"
    if isinstance(exc, podhttp.Unreachable) and exc.refused:
        return "connection refused (server bound to 127.0.0.1?)"
    return errors.shorten(str(exc), 200)


def http_pool(kube: Kube, target: base.Target, settings: CaptureSettings,
              template: templates.ExpandedTemplate) -> Transport:
    """The transport ``settings.http_transport`` names for ``target``, nothing opened yet; the
    caller closes it. Port-forwards are sized for ``template`` (:func:`forwards_needed`)."""
    t, mode = target, settings.http_transport
    if mode == "direct":
        return podhttp.Direct(namespace=t.namespace, pod=t.pod, host=t.pod_ip, port=t.pprof_port)
    if mode == "proxy":
        return podproxy.Proxy(kube, namespace=t.namespace, pod=t.pod, port=t.pprof_port)
    if mode == "port-forward":
        return portforward.Pool(kube, namespace=t.namespace, pod=t.pod, port=t.pprof_port,
                                size=forwards_needed(template))
    return Auto(kube, target, forwards=forwards_needed(template),
                deadline_seconds=deadline.deadline_seconds(settings, template, COLLECTORS))
