"""``kubectl debugcap verify``: check a bundle on this machine against its own checksums."""

from __future__ import annotations

from pathlib import Path

import click

from debugcap.kubectl_plugin.options import ExitCode


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(bundle: Path) -> None:
    """Check every SHA-256 in a bundle's manifest and the bundle's own .sha256.

    \b
    Example:
      kubectl debugcap verify ./prod_api-1_20261123T160000Z.tar.gz
    """
    from debugcap.bundle import verify as verifying

    result = verifying.verify(bundle)
    if not result.ok:
        click.echo(result.summary(), err=True)
        raise SystemExit(ExitCode.VERIFY_FAILED)
    own = {True: "its .sha256 matches", None: "no .sha256 beside it"}[result.bundle_checksum_ok]
    click.echo(f"{result.summary()}; sha256 {result.sha256} ({own})")


COMMANDS: list[click.Command] = [verify]
