"""``kubectl debugcap verify``: check a bundle on this machine against its own checksums."""

from __future__ import annotations

from pathlib import Path

import click

from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.options import ExitCode


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True,
              help="Fail (exit 4) when no <bundle>.sha256 vouches for the archive as a whole.")
def verify(bundle: Path, strict: bool) -> None:
    """Check every SHA-256 in a bundle's manifest and the bundle's own .sha256.

    A bundle without its .sha256 is checked against its own manifest only: a warning on stderr
    and a note on the result; --strict makes that a failure.

    \b
    Example:
      kubectl debugcap verify --strict ./prod_api-1_20261123T160000Z.tar.gz
    """
    from debugcap.bundle import layout
    from debugcap.bundle import verify as verifying

    result = verifying.verify(bundle)
    if not result.ok:
        terminal.echo(result.summary(), err=True)
        raise SystemExit(ExitCode.VERIFY_FAILED)
    if result.bundle_checksum_ok is None:
        terminal.echo(f"warning: no {layout.checksum_name(bundle.name)} beside the bundle: its members agree with "
                      "its own manifest, but nothing vouches for the archive as a whole (a bundle rebuilt with a "
                      "new manifest passes too); fetch the .sha256 with it" + ("" if strict else
                      ", or pass --strict to fail on this"), err=True)
        if strict:
            terminal.echo(f"{bundle.name}: FAILED (--strict: no .sha256 beside it)", err=True)
            raise SystemExit(ExitCode.VERIFY_FAILED)
    own = {True: "its .sha256 matches", None: "UNVOUCHED: no .sha256 beside it"}[result.bundle_checksum_ok]
    terminal.echo(f"{result.summary()}; sha256 {result.sha256} ({own})")


COMMANDS: list[click.Command] = [verify]
