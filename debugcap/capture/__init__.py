"""The capture engine: resolve a pod, run a template's collectors, write one bundle.

Front ends (the kubectl plugin's ``create --local``, the operator) call
:func:`resolve_target` and :func:`capture`; nothing else in them touches
collectors or bundles. The operator also sizes a pod's connections with
:func:`forwards_needed` and :func:`command_pool`, and paces pods with :func:`window_seconds`.

Collectors run concurrently: the steps of one ``window`` (CPU profile, goroutine dump, trace)
start together so they describe the same moment, and the rest run beside them, so a capture
takes about as long as its longest window instead of the sum of its steps. A collector that
fails is recorded and the capture goes on; only a capture that collected nothing is Failed.
A capture that outlives ``CaptureSettings.capture_timeout_seconds`` abandons the steps still
running and writes what it has.

Modules: :mod:`~debugcap.capture.target` (which container), :mod:`~debugcap.capture.window`
(when each step starts, when the window is open), :mod:`~debugcap.capture.steps` (running the
collectors into the bundle), :mod:`~debugcap.capture.deadline` (the clock and the deadline),
:mod:`~debugcap.capture.run` (one capture as an object), :mod:`~debugcap.capture.outcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from debugcap import templates
from debugcap.capture.commands import CommandChannel
from debugcap.capture.deadline import MONOTONIC, Clock
from debugcap.capture.outcome import CaptureOutcome, Phase, phase_of
from debugcap.capture.run import Capture
from debugcap.capture.steps import Progress
from debugcap.capture.target import DEFAULT_CONTAINER_ANNOTATION, PPROF_PORT_ANNOTATION, resolve_target
from debugcap.capture.transport import Transport, http_pool
from debugcap.capture.window import WINDOW_HEAD_START_SECONDS, SendingGets, forwards_needed, window_seconds
from debugcap.collectors import COLLECTORS, base, execution
from debugcap.kube import shell
from debugcap.kube.client import Kube
from debugcap.kube.shared_reads import SharedReads
from debugcap.settings import CaptureSettings

__all__ = [
    "COLLECTORS", "DEFAULT_CONTAINER_ANNOTATION", "PPROF_PORT_ANNOTATION", "WINDOW_HEAD_START_SECONDS",
    "CaptureOutcome", "CommandChannel", "Phase", "Progress", "Transport", "capture", "command_pool",
    "forwards_needed", "http_pool", "phase_of", "resolve_target", "window_seconds",
]


def capture(
    kube: Kube,
    target: base.Target,
    template: templates.ExpandedTemplate,
    *,
    out_dir: Path,
    capture_name: str,
    settings: CaptureSettings | None = None,
    progress: Progress | None = None,
    # Steps mostly wait on the network and the kubelet, so starting all of them at once is
    # what keeps a capture as long as its longest window rather than the sum of its steps.
    parallelism: int = 8,
    http: SendingGets | None = None,
    commands: base.Commands | None = None,
    started: datetime | None = None,
    window_open: Callable[[], None] | None = None,
    deadline_setting: str = "capture_timeout_seconds",
    collectors: Mapping[str, type[base.Collector]] | None = None,
    clock: Clock = MONOTONIC,
    shared: SharedReads | None = None,
) -> CaptureOutcome:
    """Run every step of ``template`` against ``target`` and write one bundle into ``out_dir``.

    ``http``, ``commands``: the transport to the pprof port (:func:`http_pool`) and where commands
    run (:func:`command_pool`), already set up (the operator opens them before the pod's turn); the
    caller keeps ownership. Without them the capture opens and closes its own.
    ``window_open``: called once, when the requests of the steps that open the window (CPU
    profile, trace) are out or those steps ended, or at once for a template without a window.
    ``started``: the capture's start as the caller fixed it beforehand; it names the bundle, so a
    caller that records the bundle's storage key before capturing passes the time it used.
    ``deadline_setting``: how the user raises ``settings.capture_timeout_seconds`` (the
    operator's ``spec.parameters.deadlineSeconds``, a CLI flag), named in the records of the
    steps the deadline abandoned.
    ``collectors``: the registry steps are looked up in; None is :data:`COLLECTORS` (tests pass
    their own). ``clock``: a fake one in tests. ``shared``: the reads the pods of one sweep share
    (:mod:`debugcap.kube.shared_reads`); None reads everything for this pod alone.
    """
    settings = settings or CaptureSettings()
    say = progress or _quiet

    def unavailable(exc: shell.Unavailable) -> None:
        # Worded as the steps' records are (execution.run), so a printer can say it once.
        say(execution.NO_SHELL if exc.no_shell else f"cannot run commands in the container: {exc}", None)

    own_commands: CommandChannel | None = None
    own_http: Transport | None = None
    if commands is None:
        commands = own_commands = command_pool(kube, target, settings, on_unavailable=unavailable,
                                               note=lambda message: say(message, None))
    if http is None:
        http = own_http = http_pool(kube, target, settings, template)
    try:
        return Capture(
            kube=kube, target=target, template=template, out_dir=out_dir, capture_name=capture_name,
            settings=settings, http=http, commands=commands,
            collectors=COLLECTORS if collectors is None else collectors, started=started or datetime.now(UTC),
            progress=say, parallelism=parallelism, window_open=window_open, deadline_setting=deadline_setting,
            clock=clock, shared=shared,
        ).run()
    finally:
        if own_commands is not None:
            own_commands.close()
        if own_http is not None:
            own_http.close()


def _quiet(_message: str, _record: object) -> None:
    pass


def command_pool(kube: Kube, target: base.Target, settings: CaptureSettings, *,
                 on_unavailable: Callable[[shell.Unavailable], None] | None = None,
                 note: Callable[[str], None] | None = None) -> CommandChannel:
    """Where a capture of ``target`` runs its commands: the target's shell or an ephemeral debug
    container, per ``settings.command_mode`` (nothing is opened or added until first use)."""
    return CommandChannel(kube, target, settings, on_unavailable=on_unavailable, note=note)
