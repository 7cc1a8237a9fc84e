"""CommandChannel: where the exec collectors' commands run, decided once per capture.

The shell pools and the debug container's API calls are replaced by recorders (the Kubernetes side
is covered by tests/e2e/test_ephemeral.py); what is tested here is the channel's own logic: one
decision however many collectors ask at once, the reason kept for all of them, what the manifest
is told, and close() while a decision is still being made.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from debugcap.capture import commands
from debugcap.collectors import base
from debugcap.kube import exec as kexec
from debugcap.kube.shell import Unavailable
from debugcap.settings import CaptureSettings

TARGET = base.Target(namespace="ns", pod="p", container="app")
POD = {"metadata": {"name": "p", "namespace": "ns"},
       "spec": {"securityContext": {"runAsUser": 65532, "runAsGroup": 65532}, "containers": [{"name": "app"}]}}


class FakePool:
    """A shell pool in one container: ``app`` has no shell, debug containers have one."""

    opened: list[FakePool] = []

    def __init__(self, _kube: Any, *, namespace: str, pod: str, container: str, size: int,
                 open_timeout: float) -> None:
        self.container, self.closed = container, False
        FakePool.opened.append(self)

    def check(self) -> None:
        if self.container == "app":
            raise Unavailable("cannot start sh: exec: \"sh\": executable file not found", no_shell=True)

    def run(self, argv: list[str], *, stdout: Any, stderr: Any, timeout: float, max_bytes: int) -> kexec.ExecResult:
        self.check()
        stdout.write(f"{self.container}: {' '.join(argv)}\n".encode())
        return kexec.ExecResult(command=tuple(argv), exit_code=0, stdout_bytes=1, stderr_bytes=0, truncated=False,
                                timed_out=False, duration_s=0.0, status_message="")

    def close(self) -> None:
        self.closed = True


class FakeEphemeral:
    """kube.ephemeral's add and wait_running: counts adds; ``gate`` holds wait_running."""

    def __init__(self) -> None:
        self.adds: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: Unavailable | None = None

    def add(self, _kube: Any, namespace: str, pod: str, container: dict[str, Any], target: str) -> Any:
        self.adds.append(container["name"])
        return container["name"], True, POD

    def wait_running(self, *_args: Any, **_kwargs: Any) -> None:
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail


class FakeKube:
    def get_json(self, path: str) -> dict[str, Any]:
        return POD


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEphemeral]:
    FakePool.opened = []
    eph = FakeEphemeral()
    monkeypatch.setattr(commands.shell, "Pool", FakePool)
    monkeypatch.setattr(commands.ephemeral, "add", eph.add)
    monkeypatch.setattr(commands.ephemeral, "wait_running", eph.wait_running)
    yield eph


def channel(mode: str = "auto", told: list[Unavailable] | None = None) -> commands.CommandChannel:
    return commands.CommandChannel(FakeKube(), TARGET, CaptureSettings(command_mode=mode),  # type: ignore[arg-type]
                                   on_unavailable=(told.append if told is not None else None))


def run(ch: commands.CommandChannel, *argv: str) -> bytes:
    out = io.BytesIO()
    ch.run(list(argv), stdout=out, stderr=io.BytesIO(), timeout=5, max_bytes=1 << 20)
    return out.getvalue()


def test_collectors_asking_at_once_get_one_decision_and_one_debug_container(fakes: FakeEphemeral) -> None:
    ch = channel()
    fakes.gate.clear()  # the debug container is still starting while all of them ask
    answers: list[bytes] = []
    threads = [threading.Thread(target=lambda: answers.append(run(ch, "ps"))) for _ in range(8)]
    for t in threads:
        t.start()
    fakes.gate.set()
    for t in threads:
        t.join(10)
    assert len(fakes.adds) == 1 and len(answers) == 8
    assert all(a.startswith(b"debugcap-app-65532-") for a in answers)
    assert ch.via == "ephemeral"
    assert ch.access() == {"commands": "ephemeral", "debugImage": "busybox:1.37",
                           "ephemeralContainer": fakes.adds[0], "ephemeralContainerAdded": "true",
                           "debugUser": "65532:65532"}


def test_exec_mode_never_adds_a_container_and_keeps_the_no_shell_reason(fakes: FakeEphemeral) -> None:
    told: list[Unavailable] = []
    ch = channel("exec", told)
    for _ in range(3):
        with pytest.raises(Unavailable) as exc:
            ch.check()
        assert exc.value.no_shell
    assert fakes.adds == [] and len(told) == 1  # said once, for every collector
    assert ch.access() == {}


def test_a_failure_after_the_add_is_recorded_and_kept_for_every_collector(fakes: FakeEphemeral) -> None:
    fakes.fail = Unavailable('ephemeral container "x" cannot start: ErrImagePull')
    told: list[Unavailable] = []
    ch = channel("ephemeral", told)
    for _ in range(2):
        with pytest.raises(Unavailable, match="ErrImagePull") as exc:
            ch.check()
        assert not exc.value.no_shell  # a failure, not a skip: the evidence could have been had
    assert len(fakes.adds) == 1 and len(told) == 1
    assert ch.access()["ephemeralContainerAdded"] == "true"  # it stays in the pod: the manifest says so


def test_close_while_the_decision_is_made_does_not_wait_for_it(fakes: FakeEphemeral) -> None:
    ch = channel("ephemeral")
    fakes.gate.clear()
    asking = threading.Thread(target=lambda: pytest.raises(Unavailable, ch.check))
    asking.start()
    for _ in range(10_000):  # until the decision is under way, waiting for the container to run
        if fakes.adds:
            break
        threading.Event().wait(0.001)
    assert fakes.adds
    closed = threading.Event()
    threading.Thread(target=lambda: (ch.close(), closed.set())).start()
    assert closed.wait(5), "close() waited for the debug container to start"
    fakes.gate.set()
    asking.join(10)
    # The pool opened after close() is refused, so nothing stays open.
    assert all(p.closed for p in FakePool.opened if p.container != "app")
