"""``kubectl debugcap create --local``, ``verify`` and ``templates``: capture and check bundles.

Each command resolves defaults (kubeconfig, namespace), checks its flags, then
calls the core (``debugcap.capture``, ``debugcap.bundle.verify``).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import click
import yaml

from debugcap import capture as engine
from debugcap import delivering, errors, templates
from debugcap.bundle import manifest, verify
from debugcap.collectors import COLLECTORS
from debugcap.kube.client import Kube
from debugcap.kubectl_plugin.commands import captures
from debugcap.kubectl_plugin.options import ExitCode, kube_options, kube_target
from debugcap.settings import CaptureSettings

_MARK = {
    manifest.CollectorStatus.OK: "ok",
    manifest.CollectorStatus.PARTIAL: "partial",
    manifest.CollectorStatus.SKIPPED: "skipped",
    manifest.CollectorStatus.FAILED: "FAILED",
}


def _parse_target(value: str) -> str:
    kind, sep, name = value.partition("/")
    if not sep:
        kind, name = "pod", value
    if kind not in ("pod", "pods", "po"):
        raise click.BadParameter(f'"{value}": only pods can be captured with --local; use pod/NAME',
                                 param_hint="TARGET")
    if not name:
        raise click.BadParameter(f'"{value}" names no pod; use pod/NAME', param_hint="TARGET")
    return name


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f'"{pair}" is not KEY=VALUE (e.g. -p cpu_seconds=10)', param_hint="-p")
        params[key] = value
    return params


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
@click.option("-t", "--template", "template_name", default="debug-full", show_default=True,
              help="Template to run (see: kubectl debugcap templates).")
@click.option("-c", "--container", default=None,
              help="Container (default: annotation debugcap.io/default-container, else the first).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Template parameter, e.g. -p cpu_seconds=10 (repeatable).")
@click.option("--local", is_flag=True, help="Capture from this machine with your kubeconfig (no operator).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where the bundle is written.")
@click.option("--upload", is_flag=True,
              help="Also store the bundle: S3 when DEBUGCAP_S3_ENDPOINT is set, else DEBUGCAP_LOCAL_STORE.")
@click.option("--pprof-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the Go pprof server (default: annotation debugcap.io/pprof-port, else 6060).")
@click.option("--timeout", "exec_timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds each command may run (default 30).")
@click.option("--redact/--no-redact", default=True, show_default=True,
              help="Mask secrets in text evidence and profile labels.")
@click.option("--name", "capture_name", default=None, help="Name of the DebugCapture (and of the capture).")
@click.option("--ttl", default=None, help="How long the DebugCapture and its bundles live, e.g. 24h (operator).")
@click.option("-o", "--output", "print_as", type=click.Choice(["yaml", "json"]), default=None,
              help="Print the DebugCapture instead of creating it.")
@kube_options
def create(target: str | None, selector: str | None, template_name: str, container: str | None,
           params: tuple[str, ...], local: bool, output_dir: Path, upload: bool, pprof_port: int | None,
           exec_timeout: float | None, redact: bool, capture_name: str | None, ttl: str | None,
           print_as: str | None, namespace: str | None, context: str | None, kubeconfig: str | None,
           request_timeout: float) -> None:
    """Capture evidence from running pods: a DebugCapture the operator carries out, or --local.

    \b
    Examples:
      kubectl debugcap create pod/api-1 -t debug-full                # the operator captures
      kubectl debugcap create deployment/api -t go-profile -n prod
      kubectl debugcap create -l app=api -t go-leak -p snapshots=5 --ttl 7d
      kubectl debugcap create pod/api-1 -t debug-full -o yaml        # print, do not create
      kubectl debugcap create pod/api-1 -t debug-full --local        # capture from this machine
    """
    if not local:
        _create_resource(target, selector, template_name, container, _parse_params(params), pprof_port,
                         exec_timeout, capture_name, ttl, print_as, namespace, context, kubeconfig,
                         request_timeout)
        return
    if selector or target is None:
        raise click.UsageError("--local captures one pod: give pod/NAME (selectors need the operator)")
    pod = _parse_target(target)
    try:
        expanded = templates.expand(template_name, _parse_params(params), collectors=COLLECTORS)
    except errors.ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="-t/-p") from exc
    try:
        kube = Kube.load(kube_target(kubeconfig, context, request_timeout))
        ns = namespace or kube.default_namespace
        resolved = engine.resolve_target(kube, ns, pod, container, pprof_port)
    except errors.DebugcapError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = CaptureSettings(redact=redact)
    if exec_timeout:
        settings = dataclasses.replace(settings, exec_timeout_seconds=exec_timeout)
    output_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"capturing {ns}/{pod} (container {resolved.container}) with template {expanded.name}", err=True)

    def progress(message: str, record: manifest.CollectorRecord | None) -> None:
        if record is None:
            click.echo(f"  note: {message}", err=True)
            return
        line = f"  {_MARK[record.status]:8} {record.name:20} {record.duration_ms:>7} ms {_human(record.bytes):>10}"
        click.echo(line + (f"  {record.message}" if record.message else ""), err=True)

    try:
        outcome = engine.capture(kube, resolved, expanded, out_dir=output_dir,
                                 capture_name=capture_name or f"{pod}-{expanded.name}", settings=settings,
                                 progress=progress)
    except errors.DebugcapError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        kube.close()
    bundle = outcome.bundle
    click.echo(f"phase: {outcome.phase}", err=True)
    click.echo(f"bundle: {bundle.path}")
    click.echo(f"sha256: {bundle.sha256}")
    click.echo(f"size: {_human(bundle.size)}")
    if upload:
        try:
            store = delivering.store_from_env()
            delivery, flushed = delivering.deliver(store, bundle, namespace=ns, pod=pod,
                                                   when=bundle.manifest.started_at)
        except errors.DebugcapError as exc:
            raise click.ClickException(f"{exc} (the bundle is still at {bundle.path})") from exc
        for key in flushed.uploaded:
            click.echo(f"uploaded earlier spooled bundle: {key}", err=True)
        if delivery.stored:
            click.echo(f"stored: {delivery.location} key {delivery.key}")
        else:
            click.echo(f"upload failed, bundle kept in the spool at {delivery.location}; the next --upload "
                       f"sends it: {delivery.error}", err=True)
    click.echo(f"next: kubectl debugcap verify {bundle.path} && kubectl debugcap report {bundle.path}", err=True)
    if outcome.phase is engine.Phase.FAILED:
        raise SystemExit(ExitCode.NOTHING_COLLECTED)


def _create_resource(target: str | None, selector: str | None, template_name: str, container: str | None,
                     params: dict[str, str], pprof_port: int | None, exec_timeout: float | None,
                     name: str | None, ttl: str | None, print_as: str | None, namespace: str | None,
                     context: str | None, kubeconfig: str | None, request_timeout: float) -> None:
    spec_target, short = captures.target_spec(target, selector)
    spec_params = captures.parameters(params, pprof_port, exec_timeout)
    kube: Kube | None = None
    if namespace is None or print_as is None:
        try:
            kube = Kube.load(kube_target(kubeconfig, context, request_timeout))
        except errors.DebugcapError as exc:
            if print_as is None:
                raise click.ClickException(str(exc)) from exc
    ns = namespace or (kube.default_namespace if kube else "default")
    obj = captures.body(name or captures.capture_name(short, template_name, datetime.now(UTC)), ns, spec_target,
                        template_name, spec_params, container, ttl)
    if print_as is not None:
        click.echo(json.dumps(obj, indent=2) if print_as == "json" else yaml.safe_dump(obj, sort_keys=False))
        return
    assert kube is not None
    try:
        captures.create(kube, obj)
    finally:
        kube.close()
    click.echo(f"debugcapture.debugcap.io/{obj['metadata']['name']} created")
    click.echo(f"next: kubectl debugcap get {obj['metadata']['name']} -n {ns} -o wide", err=True)


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_cmd(bundle: Path) -> None:
    """Check every SHA-256 in a bundle's manifest and the bundle's own .sha256."""
    try:
        result = verify.verify(bundle)
    except errors.DebugcapError as exc:
        raise click.ClickException(str(exc)) from exc
    if not result.ok:
        click.echo(result.summary(), err=True)
        raise SystemExit(ExitCode.VERIFY_FAILED)
    own = {True: "its .sha256 matches", None: "no .sha256 beside it"}[result.bundle_checksum_ok]
    click.echo(f"{result.summary()}; sha256 {result.sha256} ({own})")


@click.command("templates")
@click.option("-o", "--output", type=click.Choice(["table", "names"]), default="table", show_default=True)
def templates_cmd(output: str) -> None:
    """List capture templates and their parameters."""
    for t in templates.list_templates():
        if output == "names":
            click.echo(t.name)
            continue
        click.echo(f"{t.name}\n  {t.description}")
        for p in t.parameters.values():
            click.echo(f"    {p.name} = {p.default}  ({p.describe_valid()}) {p.description}")
        click.echo(f"  collectors: {', '.join(dict.fromkeys(s.collector for s in t.steps))}\n")


COMMANDS = [create, captures.get, verify_cmd, templates_cmd]
