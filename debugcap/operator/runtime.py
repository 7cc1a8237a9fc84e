"""The operator's process-wide state, built at start-up and carried in kopf's ``memo``.

:func:`debugcap.operator.startup.configure` stores a :class:`Runtime` in the global memo under
``memo.runtime``; kopf hands every resource handler a copy of that memo, and the handlers read it
with :func:`of`. Nothing here is a module global, so a test builds its own :class:`Runtime`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import kopf

from debugcap import delivering
from debugcap.kube.client import Kube
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.pod_scheduling import PodScheduler
from debugcap.operator.spool_flushing import SpoolFlusher

T = TypeVar("T")


@dataclass
class Runtime:
    """Per-process state; built on the running loop, as its asyncio primitives must be."""

    config: DebugcapConfig
    kube: Kube
    store: delivering.Store
    executor: ThreadPoolExecutor  # pod work: prepare, collect, store; not API calls (see in_thread)
    pods: PodScheduler
    inflight: set[str] = field(default_factory=set)  # uids of the captures this process runs
    # Per DebugTrigger (by uid): growth history, connections, locks (operator/trigger_checks.py).
    triggers: dict[str, Any] = field(default_factory=dict)
    flusher: SpoolFlusher | None = None  # sends spooled bundles once the store is back

    def close(self) -> None:
        # The executors first: a queued capture cancelled now never starts an upload; the flusher
        # is only told to stop (no join: this runs in kopf's cleanup, inside the grace period).
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pods.close()
        if self.flusher is not None:
            self.flusher.close()
        for state in self.triggers.values():  # operator/trigger_checks.TriggerStates: threads, connections
            close = getattr(state, "close", None)
            if callable(close):
                close()
        self.triggers.clear()
        self.kube.close()

    def threads(self) -> list[threading.Thread]:
        """The threads that may still write a status or upload a bundle: the capture executor's,
        the urgent executor's (triggered captures) and the spool flusher's."""
        found = list(self.executor._threads)  # noqa: SLF001 - the executor exposes no wait with a timeout
        if self.pods is not None:
            # An Executor, typed: a ThreadPoolExecutor in the operator, anything in a test.
            found += list(getattr(self.pods.urgent_executor, "_threads", ()))
        if self.flusher is not None:
            found.append(self.flusher.thread)
        return found

    def drain(self, timeout: float) -> bool:
        """After :meth:`close`: wait up to ``timeout`` seconds, one deadline for all of
        :meth:`threads`; whether none is left. A leader must not hand its Lease over while one may
        still write a status or upload a bundle the new leader has already given up on."""
        deadline = time.monotonic() + timeout
        threads = self.threads()
        for thread in threads:
            if thread.ident is not None:  # a flusher never started has nothing to join
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)


def of(memo: kopf.Memo) -> Runtime:
    """The runtime the start-up handler stored in ``memo``."""
    rt = memo.get("runtime")
    if not isinstance(rt, Runtime):
        raise kopf.TemporaryError("the operator has not finished starting", delay=1)
    return rt


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking API call off the event loop, on the loop's default executor (not the
    capture executor, whose threads may all be busy capturing for minutes)."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))
