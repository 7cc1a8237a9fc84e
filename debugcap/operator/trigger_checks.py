"""One check of a DebugTrigger's pods: find them, read their signals, say what each one shows.

Blocking work, called from :mod:`debugcap.operator.triggers` in threads. The pods come from
:func:`debugcap.operator.targets.find_pods` (one list call per check), their Go signals from
:class:`debugcap.capture.signals.SignalReader` (each pod read in parallel, in the state's own
threads so a slow pod does not hold a capture's), restarts and memory limits from the pod object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from debugcap import errors
from debugcap.analysis.sections import quantity
from debugcap.capture import signals
from debugcap.capture.target import DEFAULT_CONTAINER_ANNOTATION, resolve_target
from debugcap.kube.client import Kube
from debugcap.kube.podhttp import in_cluster
from debugcap.operator import targets, triggering
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.reporting import parse_stamp
from debugcap.operator.triggering import Reading, Termination, TriggerSpec

# Pods read at once per process: each read is two small GETs that wait on the network, not the CPU.
READ_THREADS: Final = 16


@dataclass
class TriggerState:
    """What the operator keeps about one trigger between its checks (lost on restart, which costs
    only the growth history: firings are counted from the trigger's captures)."""

    reader: signals.SignalReader
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # firings and status, timer and webhook alike
    growth: triggering.GrowthTracker = field(default_factory=triggering.GrowthTracker)
    next_check: float = 0.0  # loop time of the next check
    restarts: dict[str, int] = field(default_factory=dict)  # pod -> restart count last seen
    told: dict[tuple[str, str, str], datetime] = field(default_factory=dict)  # suppression Events posted
    written: dict[str, Any] = field(default_factory=dict)  # the status fields last written
    template_checked: Any = None  # the generation whose spec.template was found

    def close(self) -> None:
        self.reader.close()


def signal_transport(config: DebugcapConfig, kube: Kube) -> str:
    """direct when the operator can route to pod IPs (settings, or auto in the cluster), else pods/proxy."""
    if config.http_transport == "direct":
        return "direct"
    if config.http_transport == "auto" and in_cluster(kube.configuration.host):
        return "direct"
    return "proxy"


class TriggerStates:
    """Every trigger's state, and the threads that read pods, for the whole process."""

    def __init__(self, kube: Kube, config: DebugcapConfig) -> None:
        self.kube, self.transport = kube, signal_transport(config, kube)
        self.executor = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="trigger-read")
        self.states: dict[str, TriggerState] = {}
        # Held from counting the running triggered captures to creating the new ones, so two
        # triggers firing at once cannot both take the operator's last place.
        self.firing = asyncio.Lock()

    def of(self, uid: str) -> TriggerState:
        state = self.states.get(uid)
        if state is None:
            state = self.states[uid] = TriggerState(signals.SignalReader(self.kube, transport=self.transport))
        return state

    def drop(self, uid: str) -> None:
        state = self.states.pop(uid, None)
        if state is not None:
            state.close()

    def close(self) -> None:
        for uid in list(self.states):
            self.drop(uid)
        self.executor.shutdown(wait=False, cancel_futures=True)


def find(kube: Kube, namespace: str, spec: TriggerSpec) -> targets.PodSelection:
    """The trigger's pods (raises TargetError/ConfigError naming the field, as a capture would)."""
    return targets.find_pods(kube, namespace, spec.request)


def read_pod(kube: Kube, reader: signals.SignalReader, namespace: str, pod: Mapping[str, Any],
             spec: TriggerSpec, at: datetime) -> Reading:
    """One pod's reading at ``at``: Go signals only when the trigger asks for them and the
    container runs; restart facts and the memory limit from the pod object."""
    name = str(pod["metadata"]["name"])
    container = _container(pod, spec.request.container)
    restarts, termination = _restarts(pod, container)
    limit = _memory_limit(pod, container)
    when = spec.when
    if not when.reads_go():
        return Reading(name, at, memory_limit=limit, restarts=restarts, termination=termination)
    if when.memory_percent is not None and limit is None and when.goroutines is None and when.growth_per_minute is None:
        return Reading(name, at, restarts=restarts, termination=termination,
                       error=f"container {container} has no memory limit, so spec.when.memoryPercentOfLimit cannot "
                             "apply; set resources.limits.memory on it")
    try:
        target = resolve_target(kube, namespace, name, container, spec.request.pprof_port, read=pod)
    except errors.DebugcapError as exc:
        return Reading(name, at, memory_limit=limit, restarts=restarts, termination=termination,
                       error=errors.shorten(str(exc), 300))
    got = reader.read(target, memory=when.memory_percent is not None and limit is not None,
                      goroutines=when.goroutines is not None or when.growth_per_minute is not None)
    problems = list(got.errors)
    if when.memory_percent is not None and limit is None:
        problems.append(f"container {container} has no memory limit: memoryPercentOfLimit does not apply")
    return Reading(name, at, memory_bytes=got.memory_bytes, memory_limit=limit, goroutines=got.goroutines,
                   restarts=restarts, termination=termination, error="; ".join(problems))


async def read_all(states: TriggerStates, state: TriggerState, namespace: str,
                   pods: Sequence[Mapping[str, Any]], spec: TriggerSpec, at: datetime) -> list[Reading]:
    loop = asyncio.get_running_loop()
    jobs = [loop.run_in_executor(states.executor, read_pod, states.kube, state.reader, namespace, p, spec, at)
            for p in pods]
    return list(await asyncio.gather(*jobs))


def _container(pod: Mapping[str, Any], wanted: str | None) -> str:
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return wanted or annotations.get(DEFAULT_CONTAINER_ANNOTATION) or (names[0] if names else "")


def _restarts(pod: Mapping[str, Any], container: str) -> tuple[int, Termination | None]:
    cstatus = next((s for s in (pod.get("status") or {}).get("containerStatuses") or []
                    if s.get("name") == container), None) or {}
    ended = ((cstatus.get("lastState") or {}).get("terminated")) or None
    termination = None
    if isinstance(ended, Mapping) and ended.get("finishedAt"):
        try:
            termination = Termination(str(ended.get("reason") or "Unknown"), int(ended.get("exitCode") or 0),
                                      parse_stamp(str(ended["finishedAt"])))
        except ValueError:
            termination = None
    return int(cstatus.get("restartCount") or 0), termination


def _memory_limit(pod: Mapping[str, Any], container: str) -> int | None:
    spec = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), None)
    raw = (((spec or {}).get("resources") or {}).get("limits") or {}).get("memory")
    value = quantity(raw) if raw is not None else None
    return int(value) if value else None
