"""``kubectl debugcap``: the kubectl plugin's click group.

Commands live in ``commands/``, one module per noun, each listing its ``COMMANDS``; they are
registered below, in one place. Their modules import the capture engine and the Kubernetes
client only when a command runs, so ``--help`` stays cheap.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from debugcap import __version__, errors
from debugcap.kubectl_plugin import completing, terminal
from debugcap.kubectl_plugin.commands import (
    analyze,
    bundles,
    captures,
    completion,
    delete,
    describe,
    download,
    logs,
    redact,
    schedules,
    templates,
    trace,
    triggers,
)


class DebugcapGroup(click.Group):
    """Turns debugcap's own errors into click's, once for every command: the message on stderr, its
    control characters escaped (:mod:`terminal`), and exit code 1 (``--debug`` lets them through
    with their traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.DebugcapError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(terminal.clean(str(exc))) from exc
        except click.ClickException as exc:
            setattr(exc, "message", terminal.clean(exc.message))  # noqa: B010 (Final in click; it may quote a pod)
            raise


@click.group(cls=DebugcapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubectl debugcap")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Capture evidence from running Go pods without restarting them, and read it.

    \b
    kubectl debugcap create pod/api-1 -t debug-full --local
    kubectl debugcap verify ./prod_api-1_20261123T160000Z.tar.gz
    kubectl debugcap report ./prod_api-1_20261123T160000Z.tar.gz --html report.html
    """
    ctx.obj = {"debug": debug}


for command in [*captures.COMMANDS, *describe.COMMANDS, *download.COMMANDS, *delete.COMMANDS, *logs.COMMANDS,
                *bundles.COMMANDS, *redact.COMMANDS, *templates.COMMANDS, *analyze.COMMANDS, *trace.COMMANDS,
                *schedules.COMMANDS, *triggers.COMMANDS, *completion.COMMANDS]:
    cli.add_command(command)


def main() -> None:
    if os.path.basename(sys.argv[0]).startswith("kubectl_complete-"):
        # Installed under kubectl's completion name (a link to this executable, where one file is all
        # a package may ship, as with krew): answer kubectl's completion instead.
        completing.main()
        return
    debug = "--debug" in sys.argv[1:]
    try:
        # The completion variable is spelled out: click would derive it from the prog name, space and all.
        cli.main(prog_name="kubectl debugcap", complete_var=completing.COMPLETE_VAR, standalone_mode=not debug)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from exc
    except click.Abort:
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
