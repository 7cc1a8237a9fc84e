"""What a DebugTrigger reads from a pod at each check: its goroutines and the memory Go holds.

Read over the capture's own transports (:mod:`debugcap.capture.transport`): ``direct`` to the pod
IP when the caller can route to it (an operator in the cluster: no API server on the way, which is
what lets a trigger watch a thousand pods every ten seconds), else ``pods/proxy``. Never a
port-forward or an exec: a check is two small GETs, and a stream per pod per check would cost the
API server and the kubelet more than the capture it might lead to. A pod's connections are kept
between checks (Go keeps HTTP connections alive) and closed when the pod is no longer watched.

docs/triggers.md says why these signals and not metrics-server's (freshness) or the cgroup's
through an exec (cost).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Final

from debugcap import errors
from debugcap.collectors import base
from debugcap.formats import gostats
from debugcap.kube import podhttp, podproxy
from debugcap.kube.client import Kube

GOROUTINE_PATH: Final = "/debug/pprof/goroutine?debug=1"
EXPVAR_PATH: Final = "/debug/vars"
HEAP_TEXT_PATH: Final = "/debug/pprof/heap?debug=1"
# expvar's page is a few kB (memstats' pause arrays); 1 MiB leaves room for a program's own vars.
EXPVAR_BYTES: Final = 1 << 20
# heap?debug=1 lists every sampled allocation site before the MemStats tail: a large program's is
# a few MB. Past this the reading fails with a message suggesting expvar.
HEAP_TEXT_BYTES: Final = 32 << 20
# A check reads each pod within this; a pod that answers slower is reported, not waited for.
READ_SECONDS: Final = 5.0


@dataclass(frozen=True)
class GoSignals:
    goroutines: int | None = None
    memory_bytes: int | None = None  # Sys - HeapReleased
    memory_source: str = ""  # the path it came from
    errors: tuple[str, ...] = ()


class SignalReader:
    """Reads pods' signals; thread-safe, one instance per trigger (or process)."""

    def __init__(self, kube: Kube, *, transport: str, timeout: float = READ_SECONDS) -> None:
        if transport not in ("direct", "proxy"):
            raise ValueError(f"transport {transport!r}: signals are read direct or through pods/proxy")
        self.kube, self.transport, self.timeout = kube, transport, timeout
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str, int], podhttp.Pool] = {}
        self._no_expvar: set[tuple[str, str, int]] = set()  # pods whose /debug/vars has no memstats

    def read(self, target: base.Target, *, memory: bool, goroutines: bool) -> GoSignals:
        """The signals asked for; what could not be read is named in ``errors``, never raised."""
        key = (target.pod_uid or target.pod, target.pod_ip, target.pprof_port)
        pool = self._pool(key, target)
        found: dict[str, object] = {}
        problems: list[str] = []
        if goroutines:
            body, problem = self._get(pool, GOROUTINE_PATH, gostats.GOROUTINE_HEAD_BYTES)
            total = gostats.goroutine_total(body) if body is not None else None
            if total is None and not problem:
                problem = f"GET {GOROUTINE_PATH} did not start with 'goroutine profile: total N'"
            found["goroutines"] = total
            problems += [problem] if problem else []
        if memory:
            held, source, problem = self._memory(pool, key)
            found.update(memory_bytes=held, memory_source=source)
            problems += [problem] if problem else []
        return GoSignals(goroutines=_int(found.get("goroutines")), memory_bytes=_int(found.get("memory_bytes")),
                         memory_source=str(found.get("memory_source") or ""), errors=tuple(problems))

    def _memory(self, pool: podhttp.Pool, key: tuple[str, str, int]) -> tuple[int | None, str, str]:
        if key not in self._no_expvar:
            body, problem, status = self._fetch(pool, EXPVAR_PATH, EXPVAR_BYTES)
            held = gostats.held_from_expvar(body) if body is not None else None
            if held is not None:
                return held, EXPVAR_PATH, ""
            if status == 404 or body is not None:
                with self._lock:
                    self._no_expvar.add(key)  # not served, or without memstats: the heap text from now on
            elif problem:
                return None, EXPVAR_PATH, problem  # a failed read says nothing of what the pod serves
        body, problem = self._get(pool, HEAP_TEXT_PATH, HEAP_TEXT_BYTES)
        if body is None:
            return None, HEAP_TEXT_PATH, problem
        held = gostats.held_from_heap_text(body)
        if held is None:
            return None, HEAP_TEXT_PATH, (f"GET {HEAP_TEXT_PATH} had no '# runtime.MemStats' Sys and "
                                          f"HeapReleased lines (over {HEAP_TEXT_BYTES >> 20} MiB? import expvar "
                                          f"so {EXPVAR_PATH} serves memstats)")
        return held, HEAP_TEXT_PATH, ""

    def _get(self, pool: podhttp.Pool, path: str, limit: int) -> tuple[bytes | None, str]:
        body, problem, _status = self._fetch(pool, path, limit)
        return body, problem

    def _fetch(self, pool: podhttp.Pool, path: str, limit: int) -> tuple[bytes | None, str, int]:
        """The body (None unless HTTP 200), why not, and the HTTP status (0: no answer)."""
        sink = io.BytesIO()
        try:
            res = pool.get(path, sink, timeout=self.timeout, max_bytes=limit)
        except errors.DebugcapError as exc:
            return None, f"GET {path}: {errors.shorten(str(exc), 200)}", 0
        if res.status != 200:
            return None, f"GET {path} answered HTTP {res.status}", res.status
        return sink.getvalue(), "", 200

    def _pool(self, key: tuple[str, str, int], t: base.Target) -> podhttp.Pool:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if self.transport == "direct":
                    pool = podhttp.Direct(namespace=t.namespace, pod=t.pod, host=t.pod_ip, port=t.pprof_port)
                else:
                    pool = podproxy.Proxy(self.kube, namespace=t.namespace, pod=t.pod, port=t.pprof_port)
                self._pools[key] = pool
            return pool

    def keep_only(self, uids: set[str]) -> None:
        """Close the connections of pods no longer watched (``uids``: those still are)."""
        with self._lock:
            gone = [k for k in self._pools if k[0] not in uids]
            pools = [self._pools.pop(k) for k in gone]
            self._no_expvar -= set(gone)
        for pool in pools:
            pool.close()

    def close(self) -> None:
        self.keep_only(set())


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
