"""``kubectl debugcap top|goroutines|diff|report``: read captured evidence locally.

``cli.py`` registers these with ``for c in analyze.COMMANDS: group.add_command(c)``.
All work happens in :mod:`debugcap.analysis` (computation) and
:mod:`debugcap.analysis.rendering` (output); these functions check input, call
them, and print to stdout. Each imports what it needs when it runs: the profile
reader (protobuf) and the report's rules and renderers cost more to import than
``--help`` or ``top`` on a small profile take to run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from debugcap import __version__ as _version
from debugcap import errors

if TYPE_CHECKING:
    from debugcap.formats import pprof as pprof_format

_OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                       show_default=True, help="Output format.")
_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)
_EXISTING_ANY = click.Path(exists=True, path_type=Path)


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def _load_profile(path: Path) -> pprof_format.Profile:
    from debugcap.analysis import hints
    from debugcap.formats import pprof as pprof_format

    try:
        return pprof_format.load(path)
    except errors.AnalysisError as err:
        # A saved error body deserves its explanation, not just "holds text".
        try:
            body = hints.error_body(path.read_bytes(), str(path))
        except OSError:
            body = None
        raise click.ClickException(body or str(err)) from err


@click.command("top")
@click.argument("profile", type=_EXISTING)
@click.option("--sample-index", "sample_index", metavar="NAME",
              help="Sample type to show (e.g. alloc_space, contentions); default as pprof picks it.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N functions.")
@click.option("--node-fraction", type=click.FloatRange(0, 1), default=None, show_default="0.005",
              help="Hide functions whose cum is below this share, as pprof does.")
@_OUTPUT
def top(profile: Path, sample_index: str | None, limit: int | None, node_fraction: float | None,
        output: str) -> None:
    """Functions of a pprof PROFILE by flat and cumulative value, like `go tool pprof -top`.

    \b
    Example:
      kubectl debugcap top bundle/pprof/heap.pb.gz --sample-index alloc_space --limit 20
    """
    from debugcap.analysis import pprof
    from debugcap.analysis.rendering import pprof_text

    prof = _load_profile(profile)
    try:
        rep = pprof.top(prof, sample_index, _fraction(node_fraction))
    except pprof.UnknownSampleTypeError as err:
        raise click.BadParameter(str(err), param_hint="--sample-index") from err
    if output == "json":
        _emit_json(rep if limit is None else {**rep, "rows": rep["rows"][:limit]})
    else:
        click.echo(pprof_text.render_top(rep, prof, limit), nl=False)
    for hint in _profile_hints(prof, profile):
        click.echo(f"hint: {hint}", err=True)


def _profile_hints(prof: pprof_format.Profile, path: Path) -> list[str]:
    from debugcap.analysis import hints

    # The bundle names files after their endpoint (pprof/block.pb.gz), which
    # is what tells an empty block profile from an empty heap one.
    return hints.profile_hints(prof, path.name.split(".", 1)[0], str(path))


def _fraction(node_fraction: float | None) -> float:
    from debugcap.analysis import pprof

    return pprof.PPROF_NODE_FRACTION if node_fraction is None else node_fraction


@click.command("goroutines")
@click.argument("dump", type=_EXISTING)
@_OUTPUT
def goroutines_cmd(dump: Path, output: str) -> None:
    """Group a goroutine?debug=2 DUMP by state and top frame; flag leak suspects.

    \b
    Example:
      kubectl debugcap goroutines bundle/pprof/goroutine-debug2.txt
    """
    from debugcap.analysis import goroutines
    from debugcap.analysis.rendering import text

    try:
        summary = goroutines.load_dump(dump)
    except errors.AnalysisError as err:
        raise click.ClickException(str(err)) from err
    if output == "json":
        _emit_json(summary)
    else:
        click.echo(text.render_dump(summary), nl=False)


@click.command("diff")
@click.argument("base", type=_EXISTING_ANY)
@click.argument("new", type=_EXISTING_ANY)
@click.option("--sample-index", "sample_index", metavar="NAME",
              help="Sample type to compare (profiles only).")
@click.option("--node-fraction", type=click.FloatRange(0, 1), default=None, show_default="0.005",
              help="Hide functions whose cum is below this share, as pprof does.")
@_OUTPUT
def diff(base: Path, new: Path, sample_index: str | None, node_fraction: float | None, output: str) -> None:
    """NEW minus BASE: two profiles (like `pprof -top -diff_base`) or two bundles of one pod.

    \b
    Examples:
      kubectl debugcap diff before/heap.pb.gz after/heap.pb.gz
      kubectl debugcap diff ns_pod_20261123T160000Z.tar.gz ns_pod_20261123T170000Z.tar.gz
    """
    from debugcap.analysis import bundle_reading, pprof, report
    from debugcap.analysis.rendering import pprof_text, text

    base_bundle, new_bundle = bundle_reading.is_bundle(base), bundle_reading.is_bundle(new)
    if base_bundle != new_bundle:
        raise click.UsageError("BASE and NEW must both be profiles or both be bundles")
    if base_bundle:
        if sample_index:
            raise click.UsageError("--sample-index applies to profiles, not bundles")
        try:
            result = report.diff_bundles(base, new)
        except errors.AnalysisError as err:
            raise click.ClickException(str(err)) from err
        if output == "json":
            _emit_json(result.as_dict())
        else:
            click.echo(text.render_bundle_diff(result), nl=False)
        return
    b, n = _load_profile(base), _load_profile(new)
    try:
        rep = pprof.diff(b, n, sample_index, _fraction(node_fraction))
    except pprof.UnknownSampleTypeError as err:
        raise click.BadParameter(str(err), param_hint="--sample-index") from err
    except errors.AnalysisError as err:
        raise click.ClickException(str(err)) from err
    if output == "json":
        _emit_json(rep)
    else:
        click.echo(pprof_text.render_top(rep), nl=False)


@click.command("report")
@click.argument("bundle", type=_EXISTING_ANY)
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write a self-contained HTML report with flame graphs to FILE.")
@click.option("--speedscope", "speedscope_file",
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write every profile as speedscope JSON to FILE.")
@_OUTPUT
def report_cmd(bundle: Path, html_file: Path | None, speedscope_file: Path | None, output: str) -> None:
    """Summarise a BUNDLE (.tar.gz or unpacked directory): findings first, then the evidence.

    \b
    Example:
      kubectl debugcap report ns_pod_20261123T160000Z.tar.gz --html report.html
    """
    from debugcap.analysis import bundle_reading, flames, report
    from debugcap.analysis.rendering import html, speedscope, text

    if not bundle_reading.is_bundle(bundle):
        raise click.BadParameter(f"{bundle} is neither a bundle directory nor a .tar.gz bundle",
                                 param_hint="BUNDLE")
    flame_graphs: list[flames.Flame] | None = [] if html_file else None
    profiles: dict[str, pprof_format.Profile] | None = {} if speedscope_file else None
    try:
        rep = report.build(bundle, flame_graphs=flame_graphs, profiles=profiles)
    except errors.AnalysisError as err:
        raise click.ClickException(str(err)) from err
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
        click.echo(text.render_report(rep), nl=False)


COMMANDS: list[click.Command] = [top, goroutines_cmd, diff, report_cmd]
