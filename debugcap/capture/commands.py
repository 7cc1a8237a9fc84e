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

from debugcap import errors, hints
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
        self.via = "ephemeral"
        self._access = {"commands": "ephemeral", "debugImage": self.settings.debug_image}
        who = debug_container.spec_identity(pod, t.container)
        pool = self._start(pod, who)
        # With a shared process namespace PID 1 is the pause process, whose user says nothing of
        # the target's; a user the spec names is the user.
        if not who.known and not (pod.get("spec") or {}).get("shareProcessNamespace"):
            real = self._process_identity(pool)
            if real is None:
                self._note(f"cannot read /proc/1/status of {self._where()}: reading it as {who}, a guess; set "
                           "runAsUser and runAsGroup in the pod spec if its evidence is refused")
            elif (real.uid, real.gid) != (who.uid, who.gid):
                # The spec did not say: the process told. Its user's container is the one that can
                # read it; the probe stays in the pod (ephemeral containers cannot be removed), and
                # the next capture reads /proc/1/status through it again.
                self._note(f"{self._where()} runs as {real}: adding a debug container as that user")
                self._access["ephemeralProbe"] = self._access["ephemeralContainer"]
                self._close_pool(pool)
                who = real
                pool = self._start(pod, who)
        self._access["debugUser"] = str(who)
        return pool

    def _start(self, pod: Mapping[str, Any], who: debug_container.Identity) -> shell.Pool:
        """Find or add the debug container for ``who``, wait until it runs, open its shell pool. What
        was added is recorded before anything can fail: an ephemeral container stays in the pod."""
        t, image = self.target, self.settings.debug_image
        spec = debug_container.container_spec(pod, t.container, image, who)
        name, added, obj = ephemeral.add(self.kube, t.namespace, t.pod, spec, t.container)
        self._access["ephemeralContainer"] = name
        if added or self._access.get("ephemeralContainerAdded") != "true":
            self._access["ephemeralContainerAdded"] = str(added).lower()
        if added:
            self._note(f'added ephemeral container "{name}" to {self._where()} (it stays until the pod ends; '
                       "later captures reuse it)")
        ephemeral.wait_running(self.kube, t.namespace, t.pod, name, obj, timeout=self.settings.exec_timeout_seconds)
        pool = self._shell_pool(name)
        try:
            pool.check()
        except shell.Unavailable as exc:
            if exc.no_shell:  # the toolbox's, not the target's: not a skip, a wrong image
                raise shell.Unavailable(f'the debug image "{image}" has no sh ({exc}); '
                                        f"{hints.debug_image_fix(image)}") from exc
            raise
        return pool

    def _process_identity(self, pool: shell.Pool) -> debug_container.Identity | None:
        out, err = io.BytesIO(), io.BytesIO()
        res = pool.run(["cat", "/proc/1/status"], stdout=out, stderr=err,
                       timeout=self.settings.exec_timeout_seconds, max_bytes=1 << 16)
        return debug_container.process_identity(out.getvalue().decode(errors="replace")) if res.ok else None

    def _close_pool(self, pool: shell.Pool) -> None:
        with self._pools_lock:
            if pool in self._pools:
                self._pools.remove(pool)
        pool.close()

    def _shell_pool(self, container: str) -> shell.Pool:
        t, s = self.target, self.settings
        pool = shell.Pool(self.kube, namespace=t.namespace, pod=t.pod, container=container, size=s.exec_sessions,
                          open_timeout=min(s.exec_timeout_seconds, 15))
        with self._pools_lock:
            closed = self._closed
            if not closed:
                self._pools.append(pool)
        if closed:
            pool.close()
            raise shell.Unavailable("the capture is over")
        return pool

    def _where(self) -> str:
        return f'container "{self.target.container}" of pod "{self.target.namespace}/{self.target.pod}"'
