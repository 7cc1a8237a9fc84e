"""``kubectl debugcap schedule create|get|describe|suspend|resume|run-now``: DebugSchedules.

A DebugSchedule makes DebugCaptures on a cron schedule, as a CronJob makes Jobs (the operator's
timer, docs/operator.md). ``run-now`` is ``kubectl create job --from=cronjob/NAME``: a capture
from the schedule's captureTemplate, made now, owned and labelled as the operator makes a run
(:mod:`debugcap.schedule_runs`, shared with it), so the schedule's history limits, its
concurrency policy and its ``lastRun`` count it like any other run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from debugcap import errors, resources, schedule_runs
from debugcap.kubectl_plugin import custom_objects, debugcaptures, terminal
from debugcap.kubectl_plugin import describe_lines as lines
from debugcap.kubectl_plugin.columns import CAPTURES, SCHEDULES
from debugcap.kubectl_plugin.object_verbs import Connected, check_name, describe_command, get_command, suspend_command
from debugcap.kubectl_plugin.options import (
    KubeFlags,
    create_output_options,
    kube_options,
    print_created,
)

POLICIES = ("Forbid", "Allow", "Replace")


def _params(pairs: tuple[str, ...], hint: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f'"{pair}" is not KEY=VALUE', param_hint=hint)
        out[key] = value
    return out


@dataclass
class CreateOptions(Connected):
    """The flags of ``schedule create``; ``-o`` prints the DebugSchedule created, ``--dry-run=client``
    the one that would be."""

    name: str = field(default="", kw_only=True)
    schedule: str = field(default="", kw_only=True)
    target: str | None = field(default=None, kw_only=True)
    selector: str | None = field(default=None, kw_only=True)
    template: str = field(default="debug-full", kw_only=True)
    container: str | None = field(default=None, kw_only=True)
    params: tuple[str, ...] = field(default=(), kw_only=True)
    labels: tuple[str, ...] = field(default=(), kw_only=True)
    time_zone: str | None = field(default=None, kw_only=True)
    concurrency_policy: str | None = field(default=None, kw_only=True)
    starting_deadline_seconds: int | None = field(default=None, kw_only=True)
    successful_history_limit: int | None = field(default=None, kw_only=True)
    failed_history_limit: int | None = field(default=None, kw_only=True)
    ttl: str | None = field(default=None, kw_only=True)
    suspend: bool = field(default=False, kw_only=True)
    output: str | None = field(default=None, kw_only=True)
    dry_run: str = field(default="none", kw_only=True)
    _spec: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def validate(self) -> None:
        check_name(self.name, SCHEDULES)
        try:
            schedule_runs.check_schedule(self.schedule, self.time_zone)
        except errors.ConfigError as exc:
            hint = "--time-zone" if str(exc).startswith("spec.timeZone") else "--schedule"
            raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint=hint) from exc
        target, _ = debugcaptures.target_spec(self.target, self.selector)
        if self.container:
            target["container"] = self.container
        capture: dict[str, Any] = {"target": target, "template": self.template}
        parameters = debugcaptures.parameters(_params(self.params, "-p"))
        if parameters:
            capture["parameters"] = parameters
        if self.ttl:
            capture["ttl"] = self.ttl
        template: dict[str, Any] = {"spec": capture}
        if self.labels:
            template["metadata"] = {"labels": _params(self.labels, "--capture-label")}
        spec: dict[str, Any] = {"schedule": self.schedule}
        optional = {"timeZone": self.time_zone, "concurrencyPolicy": self.concurrency_policy,
                    "startingDeadlineSeconds": self.starting_deadline_seconds,
                    "successfulHistoryLimit": self.successful_history_limit,
                    "failedHistoryLimit": self.failed_history_limit}
        spec.update({k: v for k, v in optional.items() if v is not None})
        if self.suspend:
            spec["suspend"] = True
        self._spec = {**spec, "captureTemplate": template}

    def complete(self) -> None:
        if self.dry_run == "client" and self.kube.namespace:
            self.namespace = self.kube.namespace  # prints only: no kubeconfig needed
            return
        try:
            super().complete()
        except errors.ConfigError:
            if self.dry_run != "client":
                raise
            self.namespace = "default"  # as create --dry-run=client: it sends nothing

    def run(self) -> None:
        obj = {"apiVersion": resources.API_VERSION, "kind": SCHEDULES.kind,
               "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec}
        if self.dry_run == "client":
            if self._client is not None:
                self._client.close()
            print_created(obj, self.output, SCHEDULES.qualified, dry_run=True)
            return
        try:
            print_created(custom_objects.create(self.client, SCHEDULES, obj), self.output, SCHEDULES.qualified,
                          dry_run=False)
        finally:
            self.client.close()
        if self.output is None:
            terminal.echo(f"next: kubectl debugcap schedule describe {self.name} -n {self.namespace}", err=True)


def describe(obj: dict[str, Any], made: list[dict[str, Any]] | None, events: list[dict[str, Any]] | None,
             now: datetime) -> list[str]:
    """``schedule describe``'s text: the schedule, its captures, its Events, and what to run next."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    capture = (spec.get("captureTemplate") or {}).get("spec") or {}
    params = capture.get("parameters") or {}
    out = [lines.field("Name", meta["name"]), lines.field("Namespace", meta.get("namespace")),
           lines.field("Labels", lines.labels(meta)),
           lines.field("Schedule", f"{spec.get('schedule')} ({spec.get('timeZone') or 'UTC'})"),
           lines.field("Suspend", "true" if spec.get("suspend") else "false"),
           lines.field("Concurrency Policy", spec.get("concurrencyPolicy", "Forbid")),
           lines.field("Starting Deadline", f"{spec['startingDeadlineSeconds']}s"
                       if spec.get("startingDeadlineSeconds") else "<unset>"),
           lines.field("History Limits", f"{spec.get('successfulHistoryLimit', 3)} successful, "
                                         f"{spec.get('failedHistoryLimit', 1)} failed"),
           "Capture Template:",
           lines.field("Target", lines.target(capture), 2),
           lines.field("Template", capture.get("template"), 2),
           lines.field("Parameters", ", ".join(f"{k}={v}" for k, v in params.items()) or None, 2),
           lines.field("TTL", capture.get("ttl"), 2),
           lines.field("Last Schedule", lines.when(status.get("lastScheduleTime"), now)),
           lines.field("Next Run", next_run(spec, now)),
           lines.field("Last Successful", lines.when(status.get("lastSuccessfulTime"), now)),
           lines.field("Active", ", ".join(a.get("name", "") for a in status.get("active") or []) or None),
           *_last_run(status.get("lastRun") or {}),
           lines.field("Message", status.get("message")),
           *lines.captures(made, now), *lines.events(events, now),
           f"next: kubectl debugcap schedule run-now {meta['name']} -n {meta.get('namespace')}"]
    return out


def next_run(spec: dict[str, Any], now: datetime) -> str:
    if spec.get("suspend"):
        return "<none: suspended>"
    try:
        zone = schedule_runs.check_schedule(str(spec.get("schedule", "")), spec.get("timeZone"))
    except errors.ConfigError as exc:
        return f"<none: {exc}>"
    from croniter import croniter

    following: datetime = croniter(str(spec["schedule"]), now.astimezone(zone) if zone else now).get_next(datetime)
    return f"{following.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _last_run(run: dict[str, Any]) -> list[str]:
    if not run:
        return [lines.field("Last Run", None)]
    counts = ", ".join(f"{k} {run[k]}" for k in ("pods", "captured", "failed", "healthy", "unhealthy", "findings")
                       if run.get(k) is not None)
    out = [lines.field("Last Run", f"{run.get('capture')} ({run.get('phase', '?')})"),
           lines.field("Pods", counts or None, 2)]
    if run.get("previousCapture"):
        out.append(lines.field("Compared With", run["previousCapture"], 2))
    trend = run.get("trend") or []
    if trend:
        rows = [["Pod", "Goroutines", "Change", "Heap In Use", "Change"]]
        rows += [[str(t.get("pod", "")), str(t.get("goroutines", "")), _signed(t.get("goroutinesChange")),
                  str(t.get("heapInuse", "")), _signed(t.get("heapInuseChange"))] for t in trend]
        out += ["  Trend:", *lines.table(rows, indent=4)]
    return out


def _signed(value: object) -> str:
    return f"{value:+d}" if isinstance(value, int) else ""


@dataclass
class RunNowOptions(Connected):
    """``run-now``: the schedule's captureTemplate, captured now, as one of its runs."""

    name: str = field(default="", kw_only=True)
    capture: str | None = field(default=None, kw_only=True)

    def validate(self) -> None:
        check_name(self.name, SCHEDULES)
        if self.capture is not None:
            check_name(self.capture, CAPTURES, "--name")

    def run(self) -> None:
        now = datetime.now(UTC)
        try:
            schedule = custom_objects.read_one(self.client, SCHEDULES, self.namespace, self.name)
            # "-manual-" as kubectl names a Job made from a CronJob by hand; seconds, so two in a
            # minute do not collide with each other nor with the operator's run of that minute.
            name = self.capture or f"{self.name}-manual-{int(now.timestamp())}"
            body = schedule_runs.run_capture(schedule, name)
            body["metadata"]["namespace"] = self.namespace
            custom_objects.create(self.client, CAPTURES, body)
        finally:
            self.client.close()
        terminal.echo(f"{CAPTURES.qualified}/{name} created")
        if (schedule.get("spec") or {}).get("suspend"):
            terminal.echo(f"note: {SCHEDULES.qualified}/{self.name} is suspended; this run was made by hand", err=True)
        terminal.echo(f"next: kubectl debugcap get {name} -n {self.namespace} -o wide", err=True)


@click.group("schedule")
def schedule() -> None:
    """DebugSchedules: captures on a cron schedule, as a CronJob makes Jobs.

    \b
    kubectl debugcap schedule create nightly --schedule "0 3 * * *" deployment/api -t go-profile -n prod
    kubectl debugcap schedule get -n prod -o wide
    kubectl debugcap schedule run-now nightly -n prod
    """


@schedule.command("create")
@click.argument("name")
@click.argument("target", required=False)
@click.option("--schedule", "cron", required=True, metavar="CRON", help='Cron expression, five fields: "0 3 * * *".')
@click.option("-l", "--selector", default=None, help="Capture the pods matching key=value[,key=value].")
@click.option("-t", "--template", default="debug-full", show_default=True, help="Template of each capture.")
@click.option("-c", "--container", default=None, help="Container of the target pods.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Template parameter (repeatable).")
@click.option("--capture-label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Label of each capture made (repeatable).")
@click.option("--time-zone", default=None, help="IANA zone the schedule is read in (default UTC).")
@click.option("--concurrency-policy", type=click.Choice(POLICIES), default=None,
              help="While a run is unfinished: skip the next (Forbid, default), run both, or Replace it.")
@click.option("--starting-deadline-seconds", type=click.IntRange(min=1), default=None,
              help="A run missed by more than this is skipped.")
@click.option("--successful-history-limit", type=click.IntRange(min=0), default=None,
              help="Successful captures kept (default 3).")
@click.option("--failed-history-limit", type=click.IntRange(min=0), default=None,
              help="Failed captures kept (default 1).")
@click.option("--ttl", default=None, help="How long each capture and its bundles live, e.g. 7d.")
@click.option("--suspend", is_flag=True, help="Create it suspended.")
@create_output_options("DebugSchedule")
@kube_options
def create(name: str, cron: str, namespace: str | None, context: str | None, kubeconfig: str | None,
           request_timeout: float, **flags: Any) -> None:
    """Create a DebugSchedule: TARGET (pod/NAME, deployment/NAME...) or -l, captured on CRON.

    \b
    Examples:
      kubectl debugcap schedule create nightly --schedule "0 3 * * *" deployment/api -t go-profile
      kubectl debugcap schedule create leaks --schedule "*/30 * * * *" -l app=api -t go-leak --ttl 2d
    """
    opts = CreateOptions(KubeFlags(namespace, context, kubeconfig, request_timeout), name=name, schedule=cron,
                         **flags)
    opts.validate()
    opts.complete()
    opts.run()


schedule.add_command(get_command(SCHEDULES))
schedule.add_command(describe_command(SCHEDULES, resources.SCHEDULE_LABEL, describe,
                                     "A DebugSchedule: its spec, next run, last run and trend, captures and Events."))
schedule.add_command(suspend_command(SCHEDULES, "suspend", True, "Suspend DebugSchedules: no run starts."))
schedule.add_command(suspend_command(SCHEDULES, "resume", False, "Resume suspended DebugSchedules."))


@schedule.command("run-now")
@click.argument("name")
@click.option("--name", "capture", default=None, help="Name of the DebugCapture (default NAME-manual-<seconds>).")
@kube_options
def run_now(name: str, capture: str | None, namespace: str | None, context: str | None, kubeconfig: str | None,
            request_timeout: float) -> None:
    """Make a run of the schedule now: a DebugCapture from its captureTemplate, owned by it."""
    opts = RunNowOptions(KubeFlags(namespace, context, kubeconfig, request_timeout), name=name, capture=capture)
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [schedule]
