"""Where the exec collectors' commands run: a shell in the target container, or an ephemeral
debug container beside it (``CaptureSettings.command_mode``: exec, ephemeral, or auto).

``auto`` tries the target's own shell first and adds a debug container only when there is none:
an ephemeral container stays in the pod until the pod ends, so it is added only where exec
cannot work, and found again by name by the next capture (:mod:`debugcap.capture.debug_container`).
Either way the collectors see one :class:`~debugcap.collectors.base.Commands`; they ask
:attr:`CommandChannel.via` only where the two views differ (``df`` of the target's mounts, its
environment, its resolv.conf).

The debug container must run as the target's user (see debug_container.py). When the pod spec
does not name the user, the first container runs as a guess; it reads the real one from
``/proc/1/status``, which anyone may read, and a second container runs as that user.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from debugcap import errors
from debugcap.capture import debug_container
from debugcap.collectors import base
from debugcap.kube import ephemeral, shell
from debugcap.kube import exec as kexec
from debugcap.kube.client import Kube, segment
from debugcap.settings import CaptureSettings

Note = Callable[[str], None]


class CommandChannel:
    """The exec collectors' :class:`~debugcap.collectors.base.Commands` for one capture of one pod;
    decides on first use, once, and keeps the answer (or the reason it cannot) for every collector."""

    def __init__(self, kube: Kube, target: base.Target, settings: CaptureSettings, *,
                 on_unavailable: Callable[[shell.Unavailable], None] | None = None,
                 note: Note | None = None) -> None:
        self.kube, self.target, self.settings = kube, target, settings
        self._on_unavailable = on_unavailable or (lambda _exc: None)
        self._note = note or (lambda _msg: None)
        self._lock = threading.Lock()
        self._pool: shell.Pool | None = None
        self._failure: shell.Unavailable | None = None
        self._pools: list[shell.Pool] = []
        self._pools_lock = threading.Lock()
        self._closed = False
        self._access: dict[str, str] = {}
        self.via = ""  # "exec" or "ephemeral", once decided

    # The Commands protocol.
    def check(self) -> None:
        self._ready().check()

    def run(self, argv: Sequence[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float,
            max_bytes: int) -> kexec.ExecResult:
        return self._ready().run(argv, stdout=stdout, stderr=stderr, timeout=timeout, max_bytes=max_bytes)

    def close(self) -> None:
        # Not under _lock: a decision in progress (a debug container starting) may hold it for the
        # command timeout, and closing must not wait for that. A pool opened after this is refused.
        with self._pools_lock:
            pools, self._pools, self._closed = self._pools, [], True
        for pool in pools:
            pool.close()

    def access(self) -> dict[str, str]:
        """How commands reached the target, for the manifest and the status (empty: never used)."""
        return dict(self._access)

    def _ready(self) -> shell.Pool:
        with self._lock:
            if self._pool is None and self._failure is None:
                try:
                    self._pool = self._decide()
                except shell.Unavailable as exc:
                    self._failure = exc
                    self._on_unavailable(exc)
            if self._failure is not None:
                raise shell.Unavailable(str(self._failure), no_shell=self._failure.no_shell)
            assert self._pool is not None
            return self._pool

    def _decide(self) -> shell.Pool:
        mode = self.settings.command_mode
        if mode in ("exec", "auto"):
            pool = self._shell_pool(self.target.container)
            try:
                pool.check()
            except shell.Unavailable as exc:
                if mode == "exec" or not exc.no_shell:
                    raise
                self._note(f"{self._where()} has no shell: reading it from an ephemeral debug container")
            else:
                self.via, self._access = "exec", {"commands": "exec"}
                return pool
        return self._debug_pool()

    def _debug_pool(self) -> shell.Pool:
        t = self.target
        try:
            pod = self.kube.get_json(f"/api/v1/namespaces/{segment(t.namespace)}/pods/{segment(t.pod)}")
        except errors.KubeError as exc:
            raise shell.Unavailable(f"cannot read pod {t.namespace}/{t.pod}: {exc}") from exc
        who = debug_container.spec_identity(pod, t.container)
        pool, added, name = self._start(pod, who)
        used = [name]
        # With a shared process namespace PID 1 is the pause process, whose user says nothing of the
        # target's (the pod spec's is then used as it is).
        real = None if (pod.get("spec") or {}).get("shareProcessNamespace") else self._process_identity(pool)
        if real is not None and (real.uid, real.gid) != (who.uid, who.gid):
            # The spec did not say (or said only part): the process told. Its user's container
            # is the one that can read it; the first stays in the pod, reused as the next probe.
            self._note(f"{self._where()} runs as {real}, not {who}: adding a debug container as {real}")
            who = real
            pool, added_now, name = self._start(pod, who)
            added = added or added_now
            used.append(name)
        self.via = "ephemeral"
        self._access = {"commands": "ephemeral", "ephemeralContainer": used[-1],
                        "ephemeralContainerAdded": str(added).lower(), "debugImage": self.settings.debug_image,
                        "debugUser": str(who)}
        if len(used) > 1:
            self._access["ephemeralProbe"] = used[0]
        return pool

    def _start(self, pod: Mapping[str, Any], who: debug_container.Identity) -> tuple[shell.Pool, bool, str]:
        t = self.target
        spec = debug_container.container_spec(pod, t.container, self.settings.debug_image, who)
        name, added = ephemeral.ensure(self.kube, t.namespace, t.pod, spec,
                                       timeout=self.settings.exec_timeout_seconds)
        if added:
            self._note(f'added ephemeral container "{name}" to {self._where()} (it stays until the pod ends; '
                       "later captures reuse it)")
        pool = self._shell_pool(name)
        pool.check()
        return pool, added, name

    def _process_identity(self, pool: shell.Pool) -> debug_container.Identity | None:
        out, err = io.BytesIO(), io.BytesIO()
        res = pool.run(["cat", "/proc/1/status"], stdout=out, stderr=err,
                       timeout=self.settings.exec_timeout_seconds, max_bytes=1 << 16)
        return debug_container.process_identity(out.getvalue().decode(errors="replace")) if res.ok else None

    def _shell_pool(self, container: str) -> shell.Pool:
        t, s = self.target, self.settings
        pool = shell.Pool(self.kube, namespace=t.namespace, pod=t.pod, container=container, size=s.exec_sessions,
                          open_timeout=min(s.exec_timeout_seconds, 15))
        with self._pools_lock:
            if self._closed:
                raise shell.Unavailable("the capture is over")
            self._pools.append(pool)
        return pool

    def _where(self) -> str:
        return f'container "{self.target.container}" of pod "{self.target.namespace}/{self.target.pod}"'
