"""``kubectl debugcap redact``: mask secrets in evidence before sharing it (a file, a directory, a bundle).

What it runs is what every capture runs (:mod:`debugcap.bundle.redact`): for a bundle
:mod:`debugcap.bundle.redact_bundle` (a new bundle that ``verify`` accepts), for a file or a
directory :mod:`debugcap.bundle.redact_files`. The report of what was masked (per file, which
rules and how many times, never a value) is JSON on stderr or in ``--report FILE``; stdout has one
summary line, or the redacted file itself with ``--out -``.

``-o`` is the output format in every command (docs/architecture.md), so the output path here is
``--out``.
"""

from __future__ import annotations

import codecs
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import click

from debugcap import errors
from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.options import ExitCode

if TYPE_CHECKING:
    from debugcap.bundle.redact_detectors import Detector
    from debugcap.bundle.redact_files import RedactionResult

STDOUT = "-"


class _InputFailsChecks(click.ClickException):
    """The bundle to redact fails verify: the exit code of ``kubectl debugcap verify`` for it."""

    exit_code = ExitCode.VERIFY_FAILED


@dataclass
class RedactOptions:
    source: Path
    out: str | None = None  # a path, "-" (stdout, one file only) or None (beside the input)
    report: Path | None = None  # None: the JSON report goes to stderr
    keep_binary: bool = False
    patterns: Path | None = None  # --patterns: admin patterns, as the operator's setting reads them
    # Filled by complete().
    kind: str = ""  # file | directory | bundle
    target: Path | None = None  # None: stdout
    extra: tuple[Detector, ...] = ()  # the compiled --patterns

    def validate(self) -> None:
        """The flags alone; nothing is read."""
        if self.report is not None and self.out not in (None, STDOUT) and Path(self.out) == self.report:
            raise click.UsageError("--report and --out name the same file; the report is a file of its own")

    def complete(self) -> None:
        """What the input is, and where the redacted copy goes; refuses what would overwrite evidence."""
        from debugcap.bundle import redact_files

        if not self.source.exists():
            raise click.BadParameter(f"{self.source} does not exist", param_hint="FILE|DIR|BUNDLE")
        if self.source.is_dir():
            self.kind = "directory"
        elif redact_files.is_archive(self.source):
            self.kind = "bundle"
        else:
            self.kind = "file"
        if self.out == STDOUT:
            if self.kind != "file":
                raise click.UsageError(f"--out - (stdout) takes one file; {self.source} is a {self.kind}: "
                                       "give --out a path")
        else:
            self.target = (Path(self.out) if self.out
                           else redact_files.default_output(self.source, bundle=self.kind == "bundle"))
            self._check_target(self.target)
        if self.kind == "bundle" and self.keep_binary:
            raise click.UsageError("--keep-binary applies to files and directories; a bundle keeps what a "
                                   "capture keeps (its traces), so verify still passes")
        if self.report is not None and redact_files.same_file(self.report, self.source):
            raise click.UsageError(f"--report {self.report} is the input; the report goes to a file of its own")
        if self.patterns is not None:
            from debugcap.bundle import redact_custom

            try:
                pairs = redact_custom.read_file(self.patterns, source="--patterns")
            except errors.ConfigError as exc:
                raise click.BadParameter(str(exc), param_hint="--patterns") from exc
            self.extra = redact_custom.compile_patterns(pairs, where=f"--patterns ({self.patterns})")

    def _check_target(self, target: Path) -> None:
        from debugcap.bundle import layout, redact_files

        if self.kind == "bundle" and not target.name.endswith(layout.BUNDLE_SUFFIX):
            raise click.BadParameter(f"{target}: a bundle's name ends in {layout.BUNDLE_SUFFIX} (verify reads "
                                     "its top directory from the name)", param_hint="--out")
        try:
            redact_files.check_output(self.source, target)
        except errors.ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--out") from exc

    def run(self) -> None:
        from debugcap.bundle import redact_bundle, redact_files

        if self.kind == "bundle":
            assert self.target is not None
            try:
                result = redact_bundle.redact_bundle(self.source, self.target, extra=self.extra)
            except redact_bundle.InputFailsChecks as exc:
                raise _InputFailsChecks(str(exc)) from exc
        elif self.kind == "directory":
            assert self.target is not None
            result = redact_files.redact_directory(self.source, self.target, keep_binary=self.keep_binary,
                                                   extra=self.extra)
        else:
            sink: Path | BinaryIO = self.target if self.target is not None else sys.stdout.buffer
            if self.target is None and sys.stdout.isatty():
                sink = cast(BinaryIO, _EscapedTerminal(sys.stdout))  # a pipe gets the bytes; a terminal, no escapes
            result = redact_files.redact_file(self.source, sink, keep_binary=self.keep_binary, extra=self.extra)
        self._report(result)
        if self.kind == "file" and result.files[0].action is redact_files.Action.SKIPPED:
            raise click.ClickException(f"{self.source}: nothing was written: {result.files[0].note}")
        if self.target is not None:
            terminal.echo(_summary(result))

    def _report(self, result: RedactionResult) -> None:
        if self.report is None:
            terminal.echo(result.to_json(), err=True, nl=False)
            return
        try:
            self.report.write_text(result.to_json())
        except OSError as exc:
            raise click.ClickException(f"cannot write the report to {self.report}: {exc.strerror or exc}; "
                                       f"the redacted copy is {result.output}") from exc


def _summary(result: RedactionResult) -> str:
    from debugcap.bundle.redact_files import Action

    rules = ", ".join(f"{name} {n}" for name, n in result.rules().items())
    files = len(result.files)
    line = (f"{result.output}: {files} file{'' if files == 1 else 's'}, {result.masked} masked"
            f"{f' ({rules})' if rules else ''}; {result.count(Action.KEPT)} kept unredacted, "
            f"{result.count(Action.SKIPPED)} skipped")
    if result.kind == "bundle":
        line += f"\ncheck it with: kubectl debugcap verify {result.output}"
    return line


@click.command("redact")
@click.argument("source", metavar="FILE|DIR|BUNDLE", type=click.Path(exists=False, path_type=Path))
@click.option("--out", "out", default=None, metavar="PATH",
              help="Where the redacted copy goes (default: beside the input, with .redacted in its name; "
                   "'-' writes one file to stdout). Never an existing path.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report of what was masked here instead of stderr.")
@click.option("--keep-binary", is_flag=True,
              help="Copy files the redactor cannot read (binaries) as they are, instead of leaving them out.")
@click.option("--patterns", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also mask company-specific formats: a YAML or JSON list of {name, regex} (RE2 syntax), "
                   "the format of the operator's redaction patterns (docs/redact.md).")
def redact(source: Path, out: str | None, report: Path | None, keep_binary: bool, patterns: Path | None) -> None:
    """Mask secrets in evidence before sharing it: a file, a directory, or a bundle.

    The redaction every capture applies: tokens, passwords, keys, credentials in URLs, private keys,
    secret-looking environment values; pprof profiles masked inside, same length. A bundle becomes
    a new bundle with fresh checksums (`verify` passes); a bundle that fails verify is refused.
    Binary files are left out of a file or directory's copy (--keep-binary copies them as they
    are); symbolic links, FIFOs and devices are never followed or copied. The report says, per
    file, which rules matched and how many times, never what was masked.

    \b
    Examples:
      kubectl debugcap redact ./prod_api-1_20261123T160000Z.tar.gz
      kubectl debugcap redact app.log --out - | less
      kubectl debugcap redact ./evidence --out /tmp/share --report masked.json
      kubectl debugcap redact app.log --patterns acme-patterns.yaml --out app.redacted.log
    """
    opts = RedactOptions(source, out, report, keep_binary, patterns)
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [redact]


class _EscapedTerminal(io.RawIOBase):
    """A binary sink writing to a terminal with control characters escaped (an escape sequence in
    a hostile log would act on the terminal), decoding UTF-8 as it goes."""

    def __init__(self, out: Any) -> None:
        super().__init__()
        self._out = out
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._out.write(terminal.clean(self._decoder.decode(bytes(data))))
        return len(data)

    def flush(self) -> None:
        self._out.flush()
