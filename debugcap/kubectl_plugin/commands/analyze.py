"""``kubectl debugcap top|goroutines|diff|report``: read captured evidence locally.

``cli.py`` registers these with ``for c in analyze.COMMANDS: group.add_command(c)``.
All work happens in :mod:`debugcap.analysis` (computation) and
:mod:`debugcap.analysis.rendering` (output); these functions check input, call
them, and print to stdout. Each imports what it needs when it runs: the profile
reader (protobuf) and the report's rules and renderers cost more to import than
``--help`` or ``top`` on a small profile take to run.

Every verb that reads a bundle checks it first (:mod:`debugcap.analysis.bundle_reading`): one
that fails its checks is an error naming the first bad member (exit 4, as ``verify``), unless
``--force``, which reads what is readable and marks the output unverified.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from debugcap import __version__ as _version
from debugcap import errors
from debugcap.bundle import layout
from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.commands.capture_input import CaptureName, PathOrCapture, capture_options, local_input
from debugcap.kubectl_plugin.options import ExitCode

if TYPE_CHECKING:
    from debugcap.analysis import goroutines as goroutine_dumps
    from debugcap.formats import pprof as pprof_format

_OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                       show_default=True, help="Output format.")
_FORCE = click.option("--force", is_flag=True,
                      help="Read what is readable of a bundle that fails its checks (corrupt, cut short, no "
                           "manifest.json); the output is marked unverified.")
_EXISTING_ANY = click.Path(exists=True, path_type=Path)
_EXISTING_OR_CAPTURE = PathOrCapture()  # a file, a directory, or a capture NAME (capture_input.py)
_BUNDLE_KINDS = ("directory", "archive")


class _ChecksFailed(click.ClickException):
    """A bundle that fails its checks: the exit code of ``kubectl debugcap verify`` for the same bundle."""

    exit_code = ExitCode.VERIFY_FAILED


def _emit_json(obj: Any) -> None:
    terminal.echo(json.dumps(obj, indent=2, sort_keys=False))


def _kind(path: Path) -> str:
    from debugcap.analysis import inputs

    return inputs.kind_of(path)


@contextlib.contextmanager
def _bundle_errors(param_hint: str) -> Iterator[None]:
    """Analysis errors as click's: no bundle is a bad argument, a failing bundle exit 4, the rest exit 1."""
    from debugcap.analysis import bundle_reading

    try:
        yield
    except bundle_reading.NotABundleError as err:
        raise click.BadParameter(str(err), param_hint=param_hint) from err
    except bundle_reading.CheckFailedError as err:
        raise _ChecksFailed(str(err)) from err
    except errors.AnalysisError as err:
        raise click.ClickException(str(err)) from err


def _not_for_files(path: Path, **flags: object) -> None:
    for flag, value in flags.items():
        if value:
            raise click.UsageError(f"--{flag.replace('_', '-')} applies to a bundle; {path} is a single file")


def _refuse_trace(path: Path, wanted: str, param_hint: str) -> None:
    """An execution trace where a profile or dump is expected: the trace command reads it."""
    if _kind(path) == "trace":
        raise click.BadParameter(f"{path} is an execution trace, not {wanted}: read it with "
                                 f"`kubectl debugcap trace {path}` (--pprof sched|net|sync|syscall for its "
                                 "profiles)", param_hint=param_hint)


def _warn_unverified(lines: list[str]) -> None:
    for line in lines:
        terminal.echo(f"warning: {line}", err=True)


def _parse_profile(data: bytes, label: str) -> pprof_format.Profile:
    from debugcap.analysis import hints
    from debugcap.formats import pprof as pprof_format

    try:
        return pprof_format.parse(data, label)
    except errors.AnalysisError as err:
        # A saved error body deserves its explanation, not just "holds text".
        raise click.ClickException(hints.error_body(data, label) or str(err)) from err


def _profile_input(path: Path, name: str | None, force: bool) -> tuple[bytes, str, str, list[str] | None]:
    """(bytes, label, endpoint name, unverified lines or None for a single file) of ``top``'s PROFILE."""
    from debugcap.analysis import bundle_reading

    if _kind(path) not in _BUNDLE_KINDS:
        _not_for_files(path, profile=name, force=force)
        _refuse_trace(path, "a pprof profile", "PROFILE")
        if _kind(path) == "dump":
            raise click.BadParameter(f"{path} is a goroutine dump, not a pprof profile: group it with "
                                     f"`kubectl debugcap goroutines {path}`", param_hint="PROFILE")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise click.ClickException(f"{path}: cannot read profile: {err.strerror or err}") from err
        # The bundle names files after their endpoint (pprof/block.pb.gz), which is what tells
        # an empty block profile from an empty heap one.
        return data, str(path), path.name.split(".", 1)[0], None
    if not name:
        raise click.UsageError(f"{path} is a bundle: name the profile to show with --profile "
                               f"({', '.join(layout.PPROF_PROFILES)})")
    rel = layout.PPROF_PROFILES[name]
    with _bundle_errors("PROFILE"):
        bundle_reading.require_bundle(path, force=force)
        with bundle_reading.BundleReader(path, force=force) as reader:
            member = reader.read(rel)
            if member is None:
                present = ", ".join(k for k, p in layout.PPROF_PROFILES.items() if reader.exists(p)) or "none"
                lost = reader.loss(rel)
                if lost:
                    raise click.ClickException(f"{path}: {lost}; its readable profiles: {present}. Fetch an intact "
                                               f"copy (`kubectl debugcap verify {path}` says where it is damaged)")
                raise click.ClickException(f"{path} has no {rel}; its profiles: {present}")
            return member, reader.label(rel), name, reader.unverified


@click.command("top")
@click.argument("profile", type=_EXISTING_OR_CAPTURE)
@click.option("--profile", "profile_name", type=click.Choice(list(layout.PPROF_PROFILES)),
              help="With a bundle as PROFILE: which of its profiles to show.")
@click.option("--sample-index", "sample_index", metavar="NAME",
              help="Sample type to show (e.g. alloc_space, contentions); default as pprof picks it.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N functions (pprof's -nodecount).")
@click.option("--node-fraction", type=click.FloatRange(0, 1), default=None, show_default="0.005",
              help="Hide functions whose cum is below this share, as pprof does.")
@_OUTPUT
@_FORCE
@capture_options
def top(profile: Path | CaptureName, profile_name: str | None, sample_index: str | None, limit: int | None,
        node_fraction: float | None, output: str, force: bool, pod: str | None, **kube: Any) -> None:
    """Functions of a pprof PROFILE by flat and cumulative value, as `go tool pprof -top` prints them.

    PROFILE is a profile file, or a bundle (.tar.gz or unpacked directory) or a capture NAME
    (its bundle downloaded, verified and cached) with --profile.

    \b
    Examples:
      kubectl debugcap top bundle/pprof/heap.pb.gz --sample-index alloc_space --limit 20
      kubectl debugcap top ns_pod_20261123T160000Z.tar.gz --profile cpu
      kubectl debugcap top api-1-debug-full-20261123160000 -n prod --profile cpu
    """
    from debugcap.analysis import hints, pprof
    from debugcap.analysis.rendering import pprof_text

    profile = local_input(profile, pod, kube)

    data, label, kind, unverified = _profile_input(profile, profile_name, force)
    prof = _parse_profile(data, label)
    try:
        table = pprof.top_table(prof, pprof.labels(data, label), sample_index, _fraction(node_fraction), limit)
    except pprof.UnknownSampleTypeError as err:
        raise click.BadParameter(str(err), param_hint="--sample-index") from err
    except errors.AnalysisError as err:
        raise click.ClickException(str(err)) from err
    if output == "json":
        payload: dict[str, Any] = dict(table.report)
        if unverified is not None:
            payload.update(bundle=str(profile), unverified=unverified)
        _emit_json(payload)
    else:
        terminal.echo(pprof_text.render_table(table), nl=False)
    _warn_unverified(unverified or [])
    for hint in hints.profile_hints(prof, kind, label):
        terminal.echo(f"hint: {hint}", err=True)


def _fraction(node_fraction: float | None) -> float:
    from debugcap.analysis import pprof

    return pprof.PPROF_NODE_FRACTION if node_fraction is None else node_fraction


def _bundle_dump(path: Path, force: bool) -> tuple[goroutine_dumps.DumpDict, str, list[str]]:
    """A bundle's goroutine dump: debug=2, else debug=1, else the newest go-leak snapshot's."""
    from debugcap.analysis import bundle_reading, goroutines

    with _bundle_errors("DUMP"):
        bundle_reading.require_bundle(path, force=force)
        with bundle_reading.BundleReader(path, force=force) as reader:
            snapshots = [layout.snapshot_path(i, layout.SNAPSHOT_GOROUTINE_DEBUG2)
                         for i in reversed(layout.snapshot_indices(reader.names()))]
            for rel in (layout.PPROF_GOROUTINE_DEBUG2, layout.PPROF_GOROUTINE_DEBUG1, *snapshots):
                fh = reader.open(rel)
                if fh is not None:
                    with fh:
                        return goroutines.parse_stream(fh, reader.label(rel)), rel, reader.unverified
            lost = reader.loss(layout.PPROF_GOROUTINE_DEBUG2) or reader.loss(layout.PPROF_GOROUTINE_DEBUG1)
            if lost:
                raise click.ClickException(f"{path}: {lost}, and no other goroutine dump is readable. Fetch an "
                                           f"intact copy (`kubectl debugcap verify {path}` says where it is damaged)")
    raise click.ClickException(f"{path} holds no goroutine dump ({layout.PPROF_GOROUTINE_DEBUG2}, "
                               f"{layout.PPROF_GOROUTINE_DEBUG1} or a go-leak snapshot's)")


@click.command("goroutines")
@click.argument("dump", type=_EXISTING_OR_CAPTURE)
@_OUTPUT
@_FORCE
@capture_options
def goroutines_cmd(dump: Path | CaptureName, output: str, force: bool, pod: str | None, **kube: Any) -> None:
    """Group a goroutine DUMP (debug=2 or debug=1) by the application function each waits in.

    DUMP is a dump file, a bundle (.tar.gz or unpacked directory) or a capture NAME (its bundle
    downloaded, verified and cached). Goroutines are grouped by
    state and the first frame of the program's own code (not the runtime's, the standard
    library's or a dependency's); large parked groups are flagged as leak suspects.

    \b
    Examples:
      kubectl debugcap goroutines bundle/pprof/goroutine-debug2.txt
      kubectl debugcap goroutines ns_pod_20261123T160000Z.tar.gz
      kubectl debugcap goroutines api-leak-20261123160000 -n prod --pod api-7c9f-2
    """
    from debugcap.analysis import goroutines, hints
    from debugcap.analysis.rendering import text

    dump = local_input(dump, pod, kube)

    unverified: list[str] | None = None
    if _kind(dump) in _BUNDLE_KINDS:
        summary, rel, unverified = _bundle_dump(dump, force)
    else:
        _not_for_files(dump, force=force)
        _refuse_trace(dump, "a goroutine dump", "DUMP")
        rel = str(dump)
        try:
            summary = goroutines.load_dump(dump)
        except errors.AnalysisError as err:
            raise click.ClickException(str(err)) from err
    if output == "json":
        payload: dict[str, Any] = dict(summary)
        if unverified is not None:
            payload.update(bundle=str(dump), source=rel, unverified=unverified)
        _emit_json(payload)
    else:
        terminal.echo(text.render_dump(summary), nl=False)
    _warn_unverified(unverified or [])
    for hint in hints.dump_hints(summary, rel):
        terminal.echo(f"hint: {hint}", err=True)


@click.command("diff")
@click.argument("base", type=_EXISTING_ANY)
@click.argument("new", type=_EXISTING_ANY)
@click.option("--sample-index", "sample_index", metavar="NAME",
              help="Sample type to compare (profiles only); default as `pprof -diff_base` picks it.")
@click.option("--node-fraction", type=click.FloatRange(0, 1), default=None, show_default="0.005",
              help="Hide functions whose cum is below this share, as pprof does.")
@_OUTPUT
@_FORCE
def diff(base: Path, new: Path, sample_index: str | None, node_fraction: float | None, output: str,
         force: bool) -> None:
    """NEW minus BASE: two profiles (like `pprof -top -diff_base`) or two bundles of one pod.

    \b
    Examples:
      kubectl debugcap diff before/heap.pb.gz after/heap.pb.gz
      kubectl debugcap diff ns_pod_20261123T160000Z.tar.gz ns_pod_20261123T170000Z.tar.gz
    """
    base_bundle, new_bundle = _kind(base) in _BUNDLE_KINDS, _kind(new) in _BUNDLE_KINDS
    if base_bundle != new_bundle:
        raise click.UsageError("BASE and NEW must both be profiles or both be bundles "
                               f"({base if base_bundle else new} is a bundle, {new if base_bundle else base} is not)")
    if base_bundle:
        _diff_bundles(base, new, sample_index, output, force)
    else:
        _not_for_files(base, force=force)
        _refuse_trace(base, "a pprof profile", "BASE")
        _refuse_trace(new, "a pprof profile", "NEW")
        _diff_profiles(base, new, sample_index, _fraction(node_fraction), output)


def _diff_bundles(base: Path, new: Path, sample_index: str | None, output: str, force: bool) -> None:
    from debugcap.analysis import bundle_reading, report
    from debugcap.analysis.rendering import text

    if sample_index:
        raise click.UsageError("--sample-index applies to profiles, not bundles")
    with _bundle_errors("BASE/NEW"):
        bundle_reading.require_bundle(base, force=force)
        bundle_reading.require_bundle(new, force=force)
        result = report.diff_bundles(base, new, force=force)
    if output == "json":
        _emit_json(result.as_dict())
    else:
        terminal.echo(text.render_bundle_diff(result), nl=False)


def _diff_profiles(base: Path, new: Path, sample_index: str | None, fraction: float, output: str) -> None:
    from debugcap.analysis import pprof
    from debugcap.analysis.rendering import pprof_text

    inputs = []
    for path in (base, new):
        try:
            data = path.read_bytes()
        except OSError as err:
            raise click.ClickException(f"{path}: cannot read profile: {err.strerror or err}") from err
        inputs.append((_parse_profile(data, str(path)), data, str(path)))
    (b, b_data, b_label), (n, n_data, n_label) = inputs
    try:
        head = pprof.merged_labels(pprof.labels(n_data, n_label), pprof.labels(b_data, b_label))
        table = pprof.diff_table(b, n, head, sample_index, fraction)
    except pprof.UnknownSampleTypeError as err:
        raise click.BadParameter(str(err), param_hint="--sample-index") from err
    except errors.AnalysisError as err:
        raise click.ClickException(str(err)) from err
    if output == "json":
        _emit_json(table.report)
    else:
        terminal.echo(pprof_text.render_table(table), nl=False)


@click.command("report")
@click.argument("bundle", type=_EXISTING_OR_CAPTURE)
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write a self-contained HTML report with flame graphs to FILE.")
@click.option("--speedscope", "speedscope_file",
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write every profile as speedscope JSON to FILE.")
@_OUTPUT
@_FORCE
@capture_options
def report_cmd(bundle: Path | CaptureName, html_file: Path | None, speedscope_file: Path | None, output: str,
               force: bool, pod: str | None, **kube: Any) -> None:
    """Summarise a BUNDLE (.tar.gz or unpacked directory, or a capture NAME: its bundle downloaded,
    verified and cached): findings first, then the evidence.

    \b
    Examples:
      kubectl debugcap report ns_pod_20261123T160000Z.tar.gz --html report.html
      kubectl debugcap report api-1-debug-full-20261123160000 -n prod
    """
    from debugcap.analysis import bundle_reading, flames, report
    from debugcap.analysis.rendering import html, speedscope, text

    bundle = local_input(bundle, pod, kube)

    flame_graphs: list[flames.Flame] | None = [] if html_file else None
    profiles: dict[str, pprof_format.Profile] | None = {} if speedscope_file else None
    with _bundle_errors("BUNDLE"):
        bundle_reading.require_bundle(bundle, force=force)
        rep = report.build(bundle, flame_graphs=flame_graphs, profiles=profiles, force=force)
    try:
        if html_file is not None:
            html_file.write_text(html.render_report(rep, flame_graphs or []), encoding="utf-8")
        if speedscope_file is not None:
            doc = speedscope.speedscope(sorted((profiles or {}).items()), name=bundle.name,
                                        exporter=f"debugcap@{_version}")
            speedscope_file.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"cannot write output: {err}") from err
    if output == "json":
        _emit_json(rep.as_dict())
    else:
        terminal.echo(text.render_report(rep), nl=False)
    # As top, goroutines and trace do: the unverified line is otherwise only in the report's last section.
    _warn_unverified(bundle_reading.unverified_lines(rep.problems))


COMMANDS: list[click.Command] = [top, goroutines_cmd, diff, report_cmd]
