"""``kubectl debugcap trace``: read an execution trace, a file or a bundle's ``trace/trace.out``.

Without ``--pprof`` it prints the trace's summary (scheduler latency, stop-the-world pauses,
GOMAXPROCS...); with ``--pprof KIND`` the profile ``go tool trace -pprof=KIND`` makes, as a top
table (or ``-o json``), or written to ``-O FILE`` as a pprof protobuf for ``go tool pprof``.
The work is :mod:`debugcap.analysis.traces`'s; it is imported when the command runs, so
``--help`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from debugcap import errors
from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.options import ExitCode, output_option, print_document, print_table

if TYPE_CHECKING:
    from debugcap.analysis.traces import TraceAnalysis

# analysis.trace_pass.PROFILE_KINDS, repeated so that --help does not import the analysis.
PROFILE_KINDS: Final = ("sched", "net", "sync", "syscall")


class _ChecksFailed(click.ClickException):
    """A bundle that fails its checks: the exit code of ``kubectl debugcap verify`` for it."""

    exit_code = ExitCode.VERIFY_FAILED


@dataclass
class TraceOptions:
    """The flags of ``trace``; ``None`` means the flag was not given."""

    trace: Path
    pprof: str | None = None
    output_file: Path | None = None
    output: str | None = None
    force: bool = False
    _analysis: TraceAnalysis | None = field(default=None, repr=False)

    def validate(self) -> None:
        """Reject flags that do not go together; reads nothing."""
        if self.output_file is not None and self.pprof is None:
            raise click.UsageError("-O/--output-file writes a profile: give --pprof sched|net|sync|syscall "
                                   "to say which")
        if self.output_file is not None and self.output is not None:
            raise click.UsageError("-o/--output and -O/--output-file: with -O the profile goes to the file "
                                   "and nothing is printed; drop -o")

    def complete(self) -> None:
        """Read the trace (nothing to fill from a kubeconfig: the command reads local files only).

        A bundle is checked as ``verify`` checks it; one that fails exits 4, as ``report`` does."""
        from debugcap.analysis import bundle_reading, traces

        if self.force and self.trace.is_file() and not traces.is_bundle_file(self.trace):
            raise click.UsageError(f"--force applies to a bundle; {self.trace} is a single file")
        try:
            self._analysis = traces.load(self.trace, force=self.force)
        except bundle_reading.NotABundleError as err:
            raise click.BadParameter(str(err), param_hint="TRACE") from err
        except bundle_reading.CheckFailedError as err:
            raise _ChecksFailed(str(err)) from err

    def run(self) -> None:
        from debugcap.analysis.rendering import trace_text

        assert self._analysis is not None, "complete() first"
        a = self._analysis
        for line in a.unverified:
            terminal.echo(f"warning: {line}", err=True)
        if self.pprof is None:
            if self.output == "json":
                print_document(a.summary.as_dict(), "json")
            else:
                print_table(trace_text.summary_rows(a.summary))
        elif self.output_file is not None:
            data = a.profile_bytes(self.pprof)
            try:
                self.output_file.write_bytes(data)
            except OSError as exc:
                raise errors.AnalysisError(f"cannot write {self.output_file}: {exc.strerror or exc}") from exc
            terminal.echo(f"wrote the {self.pprof} profile of {a.summary.source} to {self.output_file} "
                       f"(read it with: go tool pprof -top {self.output_file})", err=True)
        else:
            self._print_top(a, self.pprof)
        if a.summary.cut:
            terminal.echo(f"warning: {a.summary.cut}", err=True)

    def _print_top(self, a: TraceAnalysis, kind: str) -> None:
        from debugcap.analysis import pprof
        from debugcap.analysis.rendering import pprof_text
        from debugcap.formats import pprof as pprof_format

        if self.output == "json":
            print_document(a.top(kind), "json")
            return
        # The whole -top text, header and "Dropped N nodes" line included, as `top` prints a profile
        # file: byte for byte what `go tool pprof -top` prints of `go tool trace -pprof=KIND`'s output.
        data, label = a.profile_bytes(kind), f"{a.summary.source} ({kind} profile)"
        table = pprof.top_table(pprof_format.parse(data, label), pprof.labels(data, label), "delay",
                                pprof.PPROF_NODE_FRACTION)
        terminal.echo(pprof_text.render_table(table), nl=False)


@click.command("trace")
@click.argument("trace", type=click.Path(exists=True, path_type=Path))
@click.option("--pprof", type=click.Choice(PROFILE_KINDS), default=None,
              help="Show the profile go tool trace -pprof=KIND makes: sched (waiting to run), net, sync "
                   "(mutexes, channels, select) or syscall.")
@click.option("-O", "--output-file", "output_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the --pprof profile to FILE (pprof protobuf) instead of printing it.")
@output_option("table", "json", default=None, help="Output format (default: table).")
@click.option("--force", is_flag=True, help="Read the trace of a bundle that fails its checks (corrupt, cut "
                                            "short); the output is marked unverified.")
def trace(trace: Path, pprof: str | None, output_file: Path | None, output: str | None, force: bool) -> None:
    """Read an execution TRACE (a trace file, or a bundle): its summary, or a profile.

    \b
    Examples:
      kubectl debugcap trace ns_pod_20261123T160000Z.tar.gz
      kubectl debugcap trace trace.out --pprof sched
      kubectl debugcap trace trace.out --pprof sync -O sync.pb.gz && go tool pprof -top sync.pb.gz
    """
    opts = TraceOptions(trace, pprof, output_file, output, force)
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [trace]
