"""``kubectl debugcap create`` and ``get``: captures, carried out by the operator or from here.

``create`` has two modes. Without ``--local`` it writes a DebugCapture that the operator carries
out (or, with ``-o yaml|json``, prints it without sending it); with ``--local`` it captures one
pod from this machine with the user's kubeconfig and writes a bundle. A flag of the other mode
is a usage error naming both flags, never silently ignored.

Each command is an options object: ``validate()`` checks the flags alone (nothing read, nothing
contacted: a wrong combination is reported even when the kubeconfig is broken), ``complete()``
fills the namespace from the kubeconfig, ``run()`` acts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from debugcap import errors
from debugcap.kubectl_plugin import columns, debugcaptures, terminal
from debugcap.kubectl_plugin.commands import create_wait
from debugcap.kubectl_plugin.options import (
    ExitCode,
    KubeFlags,
    create_output_options,
    kube_options,
    output_option,
    print_created,
    print_objects,
)
from debugcap.settings import COMMAND_MODES, DEFAULT_DEBUG_IMAGE, HTTP_TRANSPORTS, CaptureSettings

if TYPE_CHECKING:
    from debugcap.bundle import manifest
    from debugcap.bundle.writer import WrittenBundle
    from debugcap.kube.client import Kube
    from debugcap.templates import ExpandedTemplate

# Flags of one mode, and why the other mode has no use for them (the usage error says it).
OPERATOR_ONLY = {
    "-l/--selector": "the operator resolves selectors; --local captures one pod/NAME",
    "--ttl": "it is how long the DebugCapture lives",
    "-o/--output": "it prints the DebugCapture created",
    "--dry-run": "it prints the DebugCapture that would be created",
}
LOCAL_ONLY = {
    "--output-dir": "the operator writes bundles in the cluster; with --wait --download it is where they go",
    "--upload": "the operator stores every bundle itself",
    "--no-redact": "the operator always redacts",
    "--patterns": "the operator's patterns are its setting and the template's (docs/redact.md)",
}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _misplaced(flags: dict[str, str], where: str) -> click.UsageError:
    names = list(flags)
    subject = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    why = "; ".join(reason if len(names) == 1 else f"{flag}: {reason}" for flag, reason in flags.items())
    return click.UsageError(f"{subject} only {'applies' if len(names) == 1 else 'apply'} {where} ({why})")


def local_pod(target: str) -> str:
    """The pod NAME of ``pod/NAME`` (or a bare NAME): ``--local`` captures pods only."""
    kind, sep, name = target.partition("/")
    if not sep:
        kind, name = "pod", target
    if kind not in ("pod", "pods", "po"):
        raise click.BadParameter(f'"{target}": only pods can be captured with --local; use pod/NAME',
                                 param_hint="TARGET")
    if not name:
        raise click.BadParameter(f'"{target}" names no pod; use pod/NAME', param_hint="TARGET")
    return name


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f'"{pair}" is not KEY=VALUE (e.g. -p cpu_seconds=10)', param_hint="-p")
        params[key] = value
    return params


def check_name(name: str, param_hint: str) -> None:
    """A DebugCapture's name is a DNS subdomain; anything else the API server would refuse (or 404)."""
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        raise click.BadParameter(f'"{name}" is not a DebugCapture name: use lower-case letters, digits, '
                                 '"-" and "."', param_hint=param_hint)


def check_output_dir(path: Path) -> None:
    """``--output-dir`` must be a writable directory, or creatable in one (``run()`` creates it)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise click.BadParameter(f'"{path}": {existing} is not a directory', param_hint="--output-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        missing = "" if existing == path else f" (it does not exist, and cannot be created in {existing})"
        raise click.BadParameter(f'"{path}": not writable{missing}', param_hint="--output-dir")


@dataclass
class CreateOptions:
    """The flags of ``create``; ``None`` (or the default) means the flag was not given."""

    target: str | None = None
    selector: str | None = None
    template: str = "debug-full"
    container: str | None = None
    params: tuple[str, ...] = ()
    local: bool = False
    output_dir: Path | None = None
    upload: bool = False
    redact: bool = True
    patterns: Path | None = None  # --patterns: admin redaction patterns (--local)
    pprof_port: int | None = None
    timeout: int | None = None
    deadline: int | None = None
    command_mode: str | None = None
    transport: str | None = None
    debug_image: str | None = None
    name: str | None = None
    ttl: str | None = None
    output: str | None = None
    dry_run: str = "none"
    kube: KubeFlags = field(default_factory=KubeFlags)
    waiting: create_wait.WaitFlags = field(default_factory=create_wait.WaitFlags)
    # Filled by validate() and complete().
    namespace: str = ""
    _target: dict[str, Any] = field(default_factory=dict, repr=False)  # spec.target
    _short: str = field(default="", repr=False)  # the target's short name, for a generated name
    _params: dict[str, int | str] = field(default_factory=dict, repr=False)  # spec.parameters
    _expanded: ExpandedTemplate | None = field(default=None, repr=False)
    _patterns: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # read from --patterns
    _client: Kube | None = field(default=None, repr=False)

    def validate(self) -> None:
        """Reject flags of the other mode and bad values; reads no kubeconfig, contacts nothing."""
        create_wait.validate(self.waiting, local=self.local, output=self.output, dry_run=self.dry_run == "client")
        if self.local:
            self._validate_local()
        else:
            self._validate_operator()

    def _validate_local(self) -> None:
        given = {"-l/--selector": self.selector, "--ttl": self.ttl, "-o/--output": self.output,
                 "--dry-run": None if self.dry_run == "none" else self.dry_run}
        wrong = {flag: why for flag, why in OPERATOR_ONLY.items() if given[flag] is not None}
        if wrong:
            raise _misplaced(wrong, "without --local")
        if self.target is None:
            raise click.UsageError("--local captures one pod: give pod/NAME")
        if self.patterns is not None and not self.redact:
            # Patterns would be read and then never applied: say so rather than capture unmasked.
            raise click.UsageError("--patterns masks more, --no-redact masks nothing: drop one of them")
        local_pod(self.target)
        from debugcap import templates
        from debugcap.collectors import COLLECTORS

        try:
            self._expanded = templates.expand(self.template, parse_params(self.params), collectors=COLLECTORS)
        except errors.ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="-t/-p") from exc
        self._check_patterns(self._expanded)
        if self.output_dir is not None:
            check_output_dir(self.output_dir)

    def _check_patterns(self, expanded: ExpandedTemplate) -> None:
        """Read --patterns, and compile them with the template's own: a bad one is refused before
        anything is captured, naming the pattern and the fix."""
        from debugcap.bundle import redact_custom

        try:
            if self.patterns is not None:
                self._patterns = redact_custom.read_file(self.patterns, source="--patterns")
            where = f'template "{expanded.name}" redaction.patterns'
            redact_custom.compile_patterns(expanded.redaction_patterns, where=where)
            redact_custom.check_against(self._patterns, expanded.redaction_patterns,
                                        first_source=f"--patterns {self.patterns}", second_source=where)
        except errors.ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--patterns" if self.patterns else "-t") from exc

    def _validate_operator(self) -> None:
        given = {"--output-dir": self.output_dir is not None and not self.waiting.download, "--upload": self.upload,
                 "--no-redact": not self.redact, "--patterns": self.patterns is not None}
        wrong = {flag: why for flag, why in LOCAL_ONLY.items() if given[flag]}
        if wrong:
            raise _misplaced(wrong, "with --local")
        if self.output_dir is not None:  # where --download puts the bundles
            check_output_dir(self.output_dir)
        self._target, self._short = debugcaptures.target_spec(self.target, self.selector)
        self._params = dict(debugcaptures.parameters(parse_params(self.params), self.pprof_port, self.timeout,
                                                     self.deadline))
        access = {"commandMode": self.command_mode, "transport": self.transport, "debugImage": self.debug_image}
        self._params.update({k: v for k, v in access.items() if v is not None})
        if self.name is not None:
            check_name(self.name, "--name")

    def complete(self) -> None:
        """The namespace: ``-n``, else the kubeconfig context's. ``--dry-run=client`` with ``-n`` reads
        nothing, and alone falls back to "default" when there is no usable kubeconfig (it sends nothing)."""
        if self.dry_run == "client" and self.kube.namespace:
            self.namespace = self.kube.namespace
            return
        try:
            self._client = self.kube.load()
        except errors.ConfigError:
            if self.dry_run != "client":
                raise
            self.namespace = "default"
            return
        self.namespace = self.kube.namespace or self._client.default_namespace

    def run(self) -> None:
        if self.local:
            self._run_local()
        else:
            self._run_operator()

    def _run_operator(self) -> None:
        name = self.name or debugcaptures.capture_name(self._short, self.template, datetime.now(UTC))
        obj = debugcaptures.body(name, self.namespace, self._target, self.template, self._params, self.container,
                                 self.ttl)
        if self.dry_run == "client":
            if self._client is not None:
                self._client.close()
            print_created(obj, self.output, "debugcapture.debugcap.io", dry_run=True)
            return
        assert self._client is not None, "complete() first"
        try:
            print_created(debugcaptures.create(self._client, obj), self.output, "debugcapture.debugcap.io",
                          dry_run=False)
            if self.output is not None:
                return  # a document or a name on stdout, for a pipe: no hint
            if self.waiting.wait:
                create_wait.wait(self._client, self.namespace, name, self.waiting, self.output_dir)
                return
        finally:
            self._client.close()
        terminal.echo(f"next: kubectl debugcap get {name} -n {self.namespace} -o wide", err=True)

    def _run_local(self) -> None:
        from debugcap import capture as engine

        assert self._client is not None and self._expanded is not None and self.target is not None, \
            "validate() and complete() first"
        kube, expanded, pod, ns = self._client, self._expanded, local_pod(self.target), self.namespace
        settings = CaptureSettings(redact=self.redact, redaction_patterns=self._patterns)
        settings = dataclasses.replace(settings, command_mode=self.command_mode or settings.command_mode,
                                       http_transport=self.transport or settings.http_transport,
                                       debug_image=self.debug_image or settings.debug_image)
        if self.timeout is not None:
            # "each command or request": the operator applies timeoutSeconds to both as well.
            settings = dataclasses.replace(settings, exec_timeout_seconds=float(self.timeout),
                                           http_timeout_seconds=float(self.timeout))
        if self.deadline is not None:
            settings = dataclasses.replace(settings, capture_timeout_seconds=float(self.deadline))
        out_dir = self.output_dir or Path(".")
        try:
            resolved = engine.resolve_target(kube, ns, pod, self.container, self.pprof_port)
            out_dir.mkdir(parents=True, exist_ok=True)
            terminal.echo(f"capturing {ns}/{pod} (container {resolved.container}) with template {expanded.name}",
                       err=True)
            outcome = engine.capture(kube, resolved, expanded, out_dir=out_dir,
                                     capture_name=self.name or f"{pod}-{expanded.name}", settings=settings,
                                     progress=_Progress(), deadline_setting="--deadline")
        finally:
            kube.close()
        bundle = outcome.bundle
        terminal.echo(f"phase: {outcome.phase}", err=True)
        terminal.echo(f"bundle: {bundle.path}")
        terminal.echo(f"sha256: {bundle.sha256}")
        terminal.echo(f"size: {_human(bundle.size)}")
        if self.upload:
            _upload(bundle, ns, pod)
        terminal.echo(f"next: kubectl debugcap verify {bundle.path} && kubectl debugcap report {bundle.path}", err=True)
        if outcome.phase is engine.Phase.FAILED:
            raise SystemExit(ExitCode.NOTHING_COLLECTED)


def _upload(bundle: WrittenBundle, namespace: str, pod: str) -> None:
    from debugcap import delivering

    try:
        store = delivering.store_from_env()
        delivery, flushed = delivering.deliver(store, bundle, namespace=namespace, pod=pod,
                                               when=bundle.manifest.started_at, capture=delivering.Upload.new())
    except errors.DebugcapError as exc:
        raise errors.StorageError(f"{exc} (the bundle is still at {bundle.path})") from exc
    for key in flushed.uploaded:
        terminal.echo(f"uploaded earlier spooled bundle: {key}", err=True)
    for _key, message in flushed.held:
        terminal.echo(f"earlier spooled bundle not sent: {message}", err=True)
    if delivery.stored:
        terminal.echo(f"stored: {delivery.location} key {delivery.key}")
    elif delivery.held:
        terminal.echo(f"not uploaded: {delivery.error}", err=True)
    else:
        terminal.echo(f"upload failed, bundle kept in the spool at {delivery.location}; the next --upload "
                   f"sends it: {delivery.error}", err=True)


class _Progress:
    """Prints each step as it ends; a reason several steps share (no shell, no rights to add a
    debug container) is printed once, and "as above" after that."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def __call__(self, message: str, record: manifest.CollectorRecord | None) -> None:
        if record is None:
            self.said.add(message)
            terminal.echo(f"  note: {message}", err=True)
            return
        mark = "FAILED" if record.status == "failed" else str(record.status)  # a StrEnum: ok, partial, skipped
        line = f"  {mark:8} {record.name:20} {record.duration_ms:>7} ms {_human(record.bytes):>10}"
        why = record.message
        if why in self.said:
            why = "(as above)"
        elif why:
            self.said.add(why)
        # one_line: a pod's error body may hold line breaks, which would print lines of the pod's
        # choosing among the step lines (a forged "ok" or "phase: Completed").
        terminal.echo(line + (f"  {terminal.one_line(why)}" if why else ""), err=True)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@click.command()
@click.argument("target", required=False)
@click.option("-l", "--selector", default=None, help="Capture the pods matching key=value[,key=value] (operator).")
@click.option("-t", "--template", default="debug-full", show_default=True,
              help="Template to run (see: kubectl debugcap templates).")
@click.option("-c", "--container", default=None,
              help="Container (default: annotation debugcap.io/default-container, else the first).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Template parameter, e.g. -p cpu_seconds=10 (repeatable).")
@click.option("--local", is_flag=True, help="Capture from this machine with your kubeconfig (no operator).")
@click.option("-d", "--output-dir", type=click.Path(path_type=Path), default=None,
              help="Where the bundle is written (--local), or downloaded (--wait --download); default: the current "
                   "directory.")
@click.option("--upload", is_flag=True,
              help="Also store the bundle: S3 when DEBUGCAP_S3_ENDPOINT is set, else DEBUGCAP_LOCAL_STORE (--local).")
@click.option("--redact/--no-redact", default=True, show_default=True,
              help="Mask secrets in text evidence and profile labels (--no-redact: --local only).")
@click.option("--patterns", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also mask company-specific formats: a YAML or JSON list of {name, regex} (RE2), as "
                   "kubectl debugcap redact --patterns reads it (--local).")
@click.option("--pprof-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the Go pprof server (default: annotation debugcap.io/pprof-port, else 6060).")
@click.option("--timeout", type=click.IntRange(1, 3600), default=None,
              help="Seconds each command or request in the pod may take (default 30).")
@click.option("--deadline", type=click.IntRange(1, 86400), default=None,
              help="Seconds the whole capture of one pod may take (default: the template's own length "
                   "plus 15 min).")
@click.option("--command-mode", type=click.Choice(COMMAND_MODES), default=None,
              help="Where the process, file and socket commands run: a shell in the container (exec), an "
                   "ephemeral debug container (ephemeral), or exec when the image has a shell (auto, default).")
@click.option("--transport", type=click.Choice(HTTP_TRANSPORTS), default=None,
              help="How the Go endpoints are reached: pod IP (direct), API server pods/proxy (proxy), "
                   "port-forward, or the cheapest that answers (auto, default).")
@click.option("--debug-image", default=None, metavar="IMAGE",
              help=f"Toolbox image of the ephemeral debug container (default {DEFAULT_DEBUG_IMAGE}; "
                   "the operator allows only its own).")
@click.option("--name", default=None, help="Name of the DebugCapture (and of the capture).")
@click.option("--ttl", default=None, help="How long the DebugCapture and its bundles live, e.g. 24h (operator).")
@create_output_options("DebugCapture")
@create_wait.wait_options
@kube_options
def create(namespace: str | None, context: str | None, kubeconfig: str | None, request_timeout: float,
           **flags: Any) -> None:
    """Capture evidence from running pods: a DebugCapture the operator carries out, or --local.

    \b
    Examples:
      kubectl debugcap create pod/api-1 -t debug-full                # the operator captures
      kubectl debugcap create deployment/api -t go-profile -n prod
      kubectl debugcap create -l app=api -t go-leak -p snapshots=5 --ttl 7d
      kubectl debugcap create pod/api-1 -t debug-full --wait --download   # follow it, fetch the bundle
      kubectl debugcap create pod/api-1 -t debug-full --dry-run=client -o yaml   # print, do not create
      kubectl debugcap create pod/api-1 -t debug-full --local        # capture from this machine
    """
    waiting = create_wait.WaitFlags.pop(flags)
    opts = CreateOptions(**flags, kube=KubeFlags(namespace, context, kubeconfig, request_timeout), waiting=waiting)
    opts.validate()
    opts.complete()
    opts.run()


@dataclass
class GetOptions:
    name: str | None = None
    output: str = "table"
    kube: KubeFlags = field(default_factory=KubeFlags)
    all_namespaces: bool = False
    namespace: str = ""
    _client: Kube | None = field(default=None, repr=False)

    def validate(self) -> None:
        if self.name is not None:
            check_name(self.name, "NAME")
        if self.all_namespaces and self.name is not None:
            raise click.UsageError("-A/--all-namespaces lists captures; a NAME is read in one namespace (-n)")
        if self.all_namespaces and self.kube.namespace:
            raise click.UsageError("-A/--all-namespaces and -n/--namespace: pick one")

    def complete(self) -> None:
        self._client = self.kube.load()
        self.namespace = self.kube.namespace or self._client.default_namespace

    def run(self) -> None:
        assert self._client is not None, "complete() first"
        namespace = None if self.all_namespaces else self.namespace
        try:
            items = debugcaptures.read(self._client, namespace, self.name)
        finally:
            self._client.close()
        # The columns are the CRD's (-o wide: with its priority-1 ones), as kubectl get dcap shows them.
        print_objects(items, self.output, columns.CAPTURES, listing=self.name is None, namespace=namespace)


@click.command("get")
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True, help="List the captures of every namespace.")
@output_option("table", "wide", "name", "json", "yaml", default="table")
@kube_options
def get(name: str | None, all_namespaces: bool, output: str, namespace: str | None, context: str | None,
        kubeconfig: str | None, request_timeout: float) -> None:
    """List DebugCaptures (or show one): the CRD's columns, as kubectl get dcap (-o wide: all of them).

    \b
    Examples:
      kubectl debugcap get -n prod -o wide
      kubectl debugcap get -A
      kubectl debugcap get api-1-debug-full-20261123160000 -n prod -o yaml
    """
    opts = GetOptions(name, output, KubeFlags(namespace, context, kubeconfig, request_timeout),
                      all_namespaces=all_namespaces)
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [create, get]
