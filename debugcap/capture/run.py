"""One capture of one pod, as an object: run a template's steps, write one bundle.

:class:`Capture` puts together its collaborators: the :class:`~debugcap.capture.window.WindowGate`
(when the window opens, and the steps outside it wait for that), the
:class:`~debugcap.capture.steps.StepRunner` (each collector once, failures recorded), and the
:class:`~debugcap.capture.deadline.Deadline` (``CaptureSettings.capture_timeout_seconds``).
When the deadline passes, the steps still running are abandoned, recorded Failed (or Partial
when they added files), and the bundle is written with everything collected until then: a
deadline never loses evidence. Built and run by :func:`debugcap.capture.capture`.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from debugcap import templates
from debugcap.bundle import layout, manifest, redact, redact_bundle, redact_custom, redact_detectors, writer
from debugcap.capture.deadline import MONOTONIC, Clock, Deadline, deadline_seconds
from debugcap.capture.outcome import CaptureOutcome, phase_of
from debugcap.capture.steps import Evidence, Progress, StepRunner
from debugcap.capture.window import SendingGets, WindowGate, schedule, snapshots_first, window_size
from debugcap.collectors import base
from debugcap.kube.client import Kube
from debugcap.kube.shared_reads import SharedReads
from debugcap.settings import CaptureSettings

# A bound on a wait that takes microseconds (see Capture._collect); it only guards against a bug.
WORKERS_RETURN_SECONDS = 10.0


@dataclass(frozen=True)
class Capture:
    """Everything one capture needs; :meth:`run` does it once. Parameters: see
    :func:`debugcap.capture.capture`; ``http`` and ``commands`` stay the caller's to close."""

    kube: Kube
    target: base.Target
    template: templates.ExpandedTemplate
    out_dir: Path
    capture_name: str
    settings: CaptureSettings
    http: SendingGets
    commands: base.Commands
    collectors: Mapping[str, type[base.Collector]]
    started: datetime
    progress: Progress
    parallelism: int = 8
    window_open: Callable[[], None] | None = None
    deadline_setting: str = "capture_timeout_seconds"
    clock: Clock = MONOTONIC  # a fake one in tests
    facts: dict[str, str] = field(default_factory=dict)  # filled by the collectors: the manifest's runtime
    shared: SharedReads | None = None  # what the pods of a sweep read once for all (CollectContext.shared)

    def run(self) -> CaptureOutcome:
        deadline = Deadline(deadline_seconds(self.settings, self.template, self.collectors), clock=self.clock,
                            setting=self.deadline_setting)
        name = layout.bundle_name(self.target.namespace, self.target.pod, self.started)
        extra = custom_detectors(self.settings, self.template) if self.settings.redact else ()
        scratch_dir = Path(tempfile.mkdtemp(prefix=".debugcap-", dir=self.out_dir))
        try:
            with writer.BundleWriter(directory=self.out_dir, name=name, redact=self.settings.redact,
                                     spool_dir=scratch_dir, durable=self.settings.durable_bundles,
                                     extra_detectors=extra) as bundle:
                records, ended = self._collect(bundle, scratch_dir, deadline, extra)
                fields = self._fields(records)
                if extra:
                    # Collector messages had the built-in detectors only (collectors.base): the
                    # admin's patterns mask them here, before the manifest, and the records the
                    # operator turns into status, conditions and Events, get them.
                    fields = redact_bundle.redact_fields(fields, redact.RedactionReport(), extra)
                    records = list(fields.collectors)
                written = bundle.finish(fields)
        finally:
            shutil.rmtree(scratch_dir, ignore_errors=True)
        return CaptureOutcome(target=self.target, bundle=written, records=tuple(records), phase=phase_of(records),
                              steps_ended=ended)

    def _collect(self, bundle: writer.BundleWriter, scratch_dir: Path, deadline: Deadline,
                 extra: Sequence[redact_detectors.Detector]) -> tuple[list[manifest.CollectorRecord], threading.Event]:
        """Run every step until all are recorded or the deadline passed; records in template order,
        and the event set once no step runs any more. Progress gets each record with ``extra``
        (the admin's patterns) applied to its message."""
        progress = _masking(self.progress, extra) if extra else self.progress
        steps = self.template.steps
        evidence = Evidence(bundle, steps)
        before = frozenset(name for name, c in self.collectors.items() if c.before_window)
        gate = WindowGate(steps, clock=self.clock, on_open=self.window_open, before=before)
        context = functools.partial(base.CollectContext, kube=self.kube, target=self.target, settings=self.settings,
                                    scratch_dir=scratch_dir, commands=self.commands, facts=self.facts,
                                    shared=self.shared)
        runner = StepRunner(collectors=self.collectors, context=context, http=self.http, gate=gate,
                            evidence=evidence, clock=self.clock, progress=progress)
        gate.start()
        # Enough workers for the snapshots and the whole window at once: a window step queued behind
        # a slow snapshot would start late, apart from the others, and the bound on the snapshots'
        # wait would not hold for it.
        first = len(snapshots_first(steps, before))
        runner.start(schedule(self.template, before),
                     workers=max(self.parallelism, first + window_size(self.template)))
        finished = False
        try:
            finished = deadline.wait(evidence.done)
        finally:
            # Also on an interrupt: no step adds to the bundle once the capture stopped waiting.
            records = evidence.close(deadline, self.clock.now())
            # Wake what still waits (the mid-window delay, the head start), and tell the caller
            # the window is over if it never opened: the operator gives the next pod its turn.
            runner.stop.set()
            gate.release()
        if finished:
            # Every step is recorded, so each worker is only returning: wait for that (a real
            # wait, not the clock's: it takes microseconds), so that ``steps_ended`` unset means
            # one thing, steps abandoned at the deadline still running; and so that an error a
            # worker met after recording (a progress callback) is seen below.
            runner.ended.wait(WORKERS_RETURN_SECONDS)
        if evidence.error is not None:
            raise evidence.error
        if not finished:
            for i in evidence.abandoned:
                progress(records[i].name, records[i])
        return records, runner.ended

    def _fields(self, records: list[manifest.CollectorRecord]) -> manifest.ManifestFields:
        t = self.target
        return manifest.ManifestFields(
            capture=manifest.CaptureInfo(name=self.capture_name, template=self.template.name,
                                         parameters=dict(self.template.parameters)),
            target=manifest.TargetInfo(namespace=t.namespace, pod=t.pod, container=t.container,
                                       node=t.node or None, image=t.image or None),
            started_at=self.started, finished_at=datetime.now(UTC), collectors=tuple(records),
            access={**access_of(self.commands), **access_of(self.http)}, runtime=dict(self.facts))


def custom_detectors(settings: CaptureSettings,
                     template: templates.ExpandedTemplate) -> tuple[redact_detectors.Detector, ...]:
    """The admin's patterns (the operator's setting, then the template's), checked again here:
    their callers refused bad ones already, with the setting's or the template's own words."""
    return redact_custom.compile_patterns(
        (*settings.redaction_patterns, *template.redaction_patterns),
        where=f'redaction patterns (operator setting, then template "{template.name}")')


def _masking(progress: Progress, extra: Sequence[redact_detectors.Detector]) -> Progress:
    def say(name: str, record: manifest.CollectorRecord | None) -> None:
        if record is not None and record.message:
            record = replace(record, message=redact_bundle.redact_message(record.message, redact.RedactionReport(),
                                                                          extra))
        progress(name, record)

    return say


def access_of(channel: object) -> dict[str, str]:
    """How a channel to the pod (commands, HTTP) reached it, for the manifest and the status: its
    ``access()`` when it has one (test doubles need not)."""
    describe = getattr(channel, "access", None)
    return dict(describe()) if callable(describe) else {}
