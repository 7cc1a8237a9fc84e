"""Pods that trickle their pprof answers cannot stop the operator's other captures (issue 16).

The operator runs in-process with DEBUGCAP_OPERATOR_CONCURRENCY=1. Two pods answer their pprof
requests with a 200 and then one byte every 0.5 s for ever: busybox ``nc`` in the goapp image in
place of goapp (every path), or goapp with GOAPP_HOSTILE=trickle (its /debug/pprof/ paths). Their captures set
deadlineSeconds; a third capture, of a well-behaved goapp pod, is created after them and waits
for the one slot. Before issue 16's fix a pod kept its slot until its capture thread returned
(the engine cut its steps at the deadline, then waited for the pprof check's trickled answer);
now the slot is given back at the deadline. What the test shows end to end: the third capture
completes, and each trickling pod ends with a message naming its deadline and with the evidence
collected before it stored (PartiallyFailed, a bundle with the logs and pod YAML). The timings
are written to stderr, not asserted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kopf.testing import KopfRunner

from debugcap.kube.client import Kube

from .conftest import GoappPod, collect_runner_leftovers, strip_finalizers
from .test_operator import FAST, create, read, wait_done, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

DEADLINE = 3
# An HTTP server that answers anything with a body that never ends: a byte every 0.5 s.
TRICKLE = ("read line; printf 'HTTP/1.1 200 OK\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n'; "
           "while printf x; do sleep 0.5; done")


@pytest.fixture
def one_slot_operator(crds: None, operator_env: None, kube: Kube, namespace: str,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    """The operator serving only this test's namespace, one pod captured at a time."""
    monkeypatch.setenv("DEBUGCAP_OPERATOR_CONCURRENCY", "1")
    with KopfRunner(["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"],
                    timeout=60) as runner:
        yield runner
    collect_runner_leftovers()
    strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    assert "Traceback" not in runner.output, runner.output


def _ended_at(kube: Kube, namespace: str, names: list[str], seconds: float) -> dict[str, tuple[float, Any]]:
    """When (monotonic) each capture was first seen ended, and its status; polled every 0.5 s."""
    seen: dict[str, tuple[float, Any]] = {}
    end = time.monotonic() + seconds
    while len(seen) < len(names):
        assert time.monotonic() < end, {n: (read(kube, namespace, n).get("status") or {}) for n in names}
        for name in names:
            status = read(kube, namespace, name).get("status") or {}
            if name not in seen and status.get("phase") in ("Completed", "PartiallyFailed", "Failed"):
                seen[name] = (time.monotonic(), status)
        time.sleep(0.5)
    return seen


# The trickling pods: busybox nc answering everything so, or goapp's own hostile mode (every
# /debug/pprof/ path trickles; expvar and /metrics answer).
SERVERS = {
    "nc": {"command": ["/bin/nc", "-ll", "-p", "6060", "-e", "/bin/sh", "-c", TRICKLE]},
    "goapp": {"env": {"GOAPP_HOSTILE": "trickle"}},
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_trickling_pods_past_their_deadline_do_not_stop_another_capture(
        one_slot_operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, server: str) -> None:
    for name in ("trickle-1", "trickle-2"):
        goapp_pod(name, **SERVERS[server])
    goapp_pod("steady")
    t0 = time.monotonic()
    slow = ["slow-1", "slow-2"]
    for capture, pod in zip(slow, ("trickle-1", "trickle-2"), strict=True):
        create(kube, namespace, capture, {"target": {"pod": pod}, "template": "go-heap",
                                          "parameters": {"deadlineSeconds": DEADLINE}})
    # Queued behind both for the one slot (and the one place for a pod being prepared).
    for name in slow:
        wait_for(lambda name=name: (read(kube, namespace, name).get("status") or {}).get("phase") != "Pending"
                 and (read(kube, namespace, name).get("status") or {}).get("phase"), 60, f"{name} to start")
    create(kube, namespace, "after", {"target": {"pod": "steady"}, "template": "go-profile", "parameters": FAST})
    ended = _ended_at(kube, namespace, [*slow, "after"], 180)
    after = ended["after"][1]
    assert after["phase"] == "Completed", after
    for name in slow:
        status = ended[name][1]
        [pod] = status["pods"]
        assert f"capture deadline of {DEADLINE} s (spec.parameters.deadlineSeconds)" in pod["message"], status
        # What came before the deadline (the container's logs, the pod's YAML) is stored.
        assert (pod["phase"], bool(pod.get("bundle"))) == ("PartiallyFailed", True), status
        cut = [c for c in pod["collectors"] if "capture deadline" in c.get("message", "")]
        assert cut and all(c["name"].startswith(("pprof", "expvar", "metrics")) for c in cut), cut
        kept = {c["name"]: c["status"] for c in pod["collectors"] if c not in cut}
        assert {"logs": "ok", "pod-yaml": "ok"}.items() <= kept.items(), kept
        assert all(status == "ok" for status in kept.values()), kept
    sys.__stderr__.write(f"\n{server}: seconds from the first capture's creation to each end: "
                         f"{ {name: round(at - t0, 1) for name, (at, _s) in ended.items()} }\n")
    assert wait_done(kube, namespace, "after")["status"]["phase"] == "Completed"
