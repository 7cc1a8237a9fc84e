"""``kubectl debugcap``: the kubectl plugin's click group.

Commands live in ``commands/``, one module per noun, each listing its ``COMMANDS``; they are
registered below, in one place. Their modules import the capture engine and the Kubernetes
client only when a command runs, so ``--help`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Final

import click

from debugcap import __version__, errors
from debugcap.kubectl_plugin import terminal

COMPLETE_VAR: Final = "_KUBECTL_DEBUGCAP_COMPLETE"  # completing.COMPLETE_VAR, without importing it
# Every command: the module under commands/ that defines it (in its COMMANDS), and the line --help
# shows for it. Registered here, in one place; a module is imported only when its command runs or
# is completed, so --help and a TAB stay cheap (tests/unit/cli/test_commands.py checks each line
# is the command's own short help).
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "completion": ("completion", "Print the completion script of SHELL for the kubectl-debugcap command."),
    "create": ("captures", "Capture evidence from running pods: a DebugCapture the operator carries out, or --local."),
    "delete": ("delete", "Delete captures and, through the operator, their bundles in S3; asks first unless --yes."),
    "describe": ("describe", "Show a capture in full: spec, phase, per-pod results, bundles, failed collectors, "
                             "findings, Events."),
    "diff": ("analyze", "NEW minus BASE: two profiles (like `pprof -top -diff_base`) or two bundles of one pod."),
    "download": ("download", "Fetch a capture's bundles from S3 and verify them against the status and their "
                             "manifests."),
    "get": ("captures", "List DebugCaptures (or show one): the CRD's columns, as kubectl get dcap (-o wide: all of "
                        "them)."),
    "goroutines": ("analyze", "Group a goroutine DUMP (debug=2 or debug=1) by the application function each waits "
                              "in."),
    "logs": ("logs", "A capture's Events and each pod's progress; -f follows it until it ends."),
    "redact": ("redact", "Mask secrets in evidence before sharing it: a file, a directory, or a bundle."),
    "report": ("analyze", "Summarise a BUNDLE (.tar.gz or unpacked directory, or a capture NAME: its bundle "
                          "downloaded, verified and cached): findings first, then the evidence."),
    "schedule": ("schedules", "DebugSchedules: captures on a cron schedule, as a CronJob makes Jobs."),
    "templates": ("templates", "List capture templates and their parameters (NAME: one of them in full)."),
    "top": ("analyze", "Functions of a pprof PROFILE by flat and cumulative value, as `go tool pprof -top` prints "
                       "them."),
    "trace": ("trace", "Read an execution TRACE (a trace file, or a bundle): its summary, or a profile."),
    "trigger": ("triggers", "DebugTriggers: capture a pod when its memory, goroutines, restarts or an alert cross a "
                            "line."),
    "verify": ("bundles", "Check every SHA-256 in a bundle's manifest and the bundle's own .sha256."),
}


class DebugcapGroup(click.Group):
    """Turns debugcap's own errors into click's, once for every command: the message on stderr, its
    control characters escaped (:mod:`terminal`), and exit code 1 (``--debug`` lets them through
    with their traceback). Commands are loaded from :data:`COMMANDS` when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f"debugcap.kubectl_plugin.commands.{COMMANDS[cmd_name][0]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, from the lines of :data:`COMMANDS` (importing no command module)."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        # A bare Command shortens the line exactly as click does for a loaded one.
        rows = [(name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
                for name in self.list_commands(ctx) if name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


def all_commands() -> dict[str, click.Command]:
    """Every command, loaded (for tests and documentation, which look at each one's options)."""
    ctx = click.Context(cli)
    return {name: command for name in cli.list_commands(ctx) if (command := cli.get_command(ctx, name))}


def main() -> None:
    if os.path.basename(sys.argv[0]).startswith("kubectl_complete-"):
        # Installed under kubectl's completion name (a link to this executable, where one file is all
        # a package may ship, as with krew): answer kubectl's completion instead.
        from debugcap.kubectl_plugin import completing

        completing.main()
        return
    debug = "--debug" in sys.argv[1:]
    if COMPLETE_VAR in os.environ:
        from debugcap.kubectl_plugin import completing  # noqa: F401 - registers the shells' classes
    try:
        # The completion variable is spelled out: click would derive it from the prog name, space and all.
        cli.main(prog_name="kubectl debugcap", complete_var=COMPLETE_VAR, standalone_mode=not debug)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from exc
    except click.Abort:
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
