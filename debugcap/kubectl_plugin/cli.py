"""``kubectl debugcap``: the kubectl plugin's click group. Commands live in ``commands/``."""

from __future__ import annotations

import sys

import click

from debugcap import __version__
from debugcap.kubectl_plugin.commands import analyze, capture


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


for command in [*capture.COMMANDS, *analyze.COMMANDS]:
    cli.add_command(command)


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(prog_name="kubectl debugcap", standalone_mode=not debug)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from exc
    except click.Abort:
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
