"""``create --wait [--wait-timeout D] [--download [-d DIR]]``: stay with a capture the operator carries out.

Part of the ``create`` verb (:mod:`~debugcap.kubectl_plugin.commands.captures`), apart so that
module keeps to one concern. After the DebugCapture is created, each pod's progress is shown on
stderr (live lines on a terminal, plain lines when piped: :class:`~debugcap.kubectl_plugin.
progress.ProgressView`) until the capture ends; the command then exits with its outcome:

====  =====================================================================
0     Completed: every pod captured, every collector ok or skipped
5     PartiallyFailed: bundles stored, but some pod or collector failed
3     Failed: nothing was stored
1     the wait itself failed (timed out, the capture deleted, the API unreachable)
====  =====================================================================

``--download`` then fetches the stored bundles as ``download`` does (verified; exit 4 when one
does not match). ``--wait-timeout`` rather than ``--timeout``: ``create --timeout`` already is the
limit of one command in the pod (``spec.parameters.timeoutSeconds``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from debugcap.kubectl_plugin import terminal

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_WAIT_TIMEOUT = "30m"


@dataclass(frozen=True)
class WaitFlags:
    wait: bool = False
    wait_timeout: str | None = None
    download: bool = False

    @classmethod
    def pop(cls, flags: dict[str, Any]) -> WaitFlags:
        """The flags of :func:`wait_options`, taken out of a command's keyword arguments."""
        return cls(flags.pop("wait"), flags.pop("wait_timeout"), flags.pop("download"))

    def seconds(self) -> float:
        from debugcap.kubectl_plugin.options import parse_duration

        try:
            return parse_duration(self.wait_timeout or DEFAULT_WAIT_TIMEOUT)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--wait-timeout") from exc


def wait_options(fn: F) -> F:
    for option in reversed([
        click.option("--wait", is_flag=True,
                     help="Show each pod's progress until the capture ends; exit 0 Completed, 5 PartiallyFailed, "
                          "3 Failed (operator)."),
        click.option("--wait-timeout", default=None, metavar="DURATION",
                     help=f"How long --wait waits, e.g. 90s, 10m (default {DEFAULT_WAIT_TIMEOUT}); the capture "
                          "goes on after it."),
        click.option("--download", is_flag=True,
                     help="With --wait: download and verify the bundles at the end, into -d/--output-dir."),
    ]):
        fn = option(fn)
    return fn


def validate(flags: WaitFlags, *, local: bool, output: str | None, dry_run: bool = False) -> None:
    """Flags of waiting that do not go with the others: usage errors naming them."""
    if local and (flags.wait or flags.download or flags.wait_timeout is not None):
        given = [f for f, on in (("--wait", flags.wait), ("--wait-timeout", flags.wait_timeout is not None),
                                 ("--download", flags.download)) if on]
        raise click.UsageError(f"{' and '.join(given)} and --local: pick one (--local captures here and writes the "
                               "bundle itself; --wait follows the operator's capture)")
    if flags.download and not flags.wait:
        raise click.UsageError("--download applies with --wait (it fetches the bundles once the capture ends)")
    if flags.wait_timeout is not None and not flags.wait:
        raise click.UsageError("--wait-timeout applies with --wait")
    if flags.wait and output is not None:
        raise click.UsageError("--wait and -o/--output: pick one (-o prints the DebugCapture created, for a pipe)")
    if flags.wait and dry_run:
        raise click.UsageError("--wait and --dry-run=client: pick one (a dry run creates nothing to wait for)")
    if flags.wait:
        flags.seconds()


def wait(client: Kube, namespace: str, name: str, flags: WaitFlags, output_dir: Path | None) -> None:
    """Follow the capture to its end, download its bundles with ``--download``, exit with its outcome."""
    from debugcap.kubectl_plugin import debugcaptures
    from debugcap.kubectl_plugin.describing import STORED
    from debugcap.kubectl_plugin.progress import ProgressView, exit_code, follow, phase_of

    view = ProgressView(tty=sys.stderr.isatty(), width=shutil.get_terminal_size().columns)
    obj: dict[str, Any] = {}
    try:
        for obj in follow(lambda: debugcaptures.read_if_present(client, namespace, name), timeout=flags.seconds()):
            click.echo(view.update(obj), nl=False, err=True)  # the view escapes what it shows itself
    except KeyboardInterrupt:
        terminal.echo(f"stopped waiting; the capture goes on: kubectl debugcap logs {name} -n {namespace} -f", err=True)
        raise click.Abort() from None
    phase = phase_of(obj)
    message = " ".join(str((obj.get("status") or {}).get("message") or "").split())
    terminal.echo(f"phase: {phase}")
    if message:
        terminal.echo(f"message: {message}", err=True)
    code = exit_code(phase)
    hint = f"kubectl debugcap {'describe' if code else 'report'} {name} -n {namespace}"
    if flags.download and phase in STORED:
        from debugcap.kubectl_plugin.commands.download import download_bundles

        kept = download_bundles(obj, lambda _ref: output_dir or Path("."), kube=client)
        hint = f"kubectl debugcap report {kept[0].path}" if len(kept) == 1 and not code else hint
    terminal.echo(f"next: {hint}", err=True)
    if code:
        raise SystemExit(code)
