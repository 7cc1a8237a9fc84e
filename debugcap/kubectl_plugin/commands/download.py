"""``kubectl debugcap download NAME``: a capture's bundles, fetched from S3 and verified.

The bundles are read with the user's own S3 settings (the ``DEBUGCAP_S3_*`` variables of
``create --upload``) when they are set, else through short-lived presigned URLs the operator
hands out on a DebugDownload (:func:`debugcap.kubectl_plugin.fetching.source_for`,
:mod:`~debugcap.kubectl_plugin.download_requests`; ``--s3`` or ``--presigned`` picks one). They
are kept only when they match both the SHA-256 and size the operator recorded in the status and
their own manifest; a bundle that does not is deleted and the command exits 4, as ``verify``
does. The same download serves ``create --wait --download`` and the analysis verbs given a
capture NAME (:func:`download_bundles`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from debugcap.kubectl_plugin import debugcaptures, terminal
from debugcap.kubectl_plugin.commands.captures import check_name, check_output_dir
from debugcap.kubectl_plugin.options import ExitCode, KubeFlags, kube_options

if TYPE_CHECKING:
    from debugcap.kube.client import Kube
    from debugcap.kubectl_plugin.fetching import BundleRef, Fetched


# Where the bytes come from (download --s3 / --presigned); auto: S3 settings when set, else presigned.
AUTO, S3, PRESIGNED = "auto", "s3", "presigned"


class RefusedError(click.ClickException):
    """A fetched bundle did not match its checksums: the exit code of ``verify`` for the same bundle."""

    exit_code = ExitCode.VERIFY_FAILED


def download_bundles(obj: dict[str, Any], dest_for: Callable[[BundleRef], Path], pod: str | None = None,
                     *, print_paths: bool = True, kube: Kube | None = None, via: str = AUTO) -> list[Fetched]:
    """Fetch and verify the capture's bundles (of ``pod`` only, when given); each one kept is said
    on stderr, and its path printed on stdout with ``print_paths``. Raises :class:`RefusedError`
    after the others are fetched when one does not match. With ``kube``, a user without S3
    settings (or ``via`` presigned) asks the operator for presigned URLs; ``via`` s3 never does."""
    from debugcap.kubectl_plugin import fetching
    from debugcap.kubectl_plugin.describing import human_size
    from debugcap.kubectl_plugin.download_requests import DownloadRequest

    refs = fetching.bundle_refs(obj, pod)
    meta = obj.get("metadata") or {}
    request = (DownloadRequest(kube, str(meta.get("namespace")), str(meta.get("name")), pod)
               if kube is not None and via != S3 else None)
    try:
        kept, refused = fetching.fetch_all(refs, dest_for, presigned=request.source_for if request else None,
                                           prefer_presigned=via == PRESIGNED)
    finally:
        if request is not None:
            request.close()
    for got in kept:
        how = "already here" if got.reused else f"downloaded from {got.ref.uri or got.ref.key}"
        how += f" {got.via}" if got.via else ""
        terminal.echo(f"pod {got.ref.pod}: {how}, {human_size(got.ref.size)}, sha256 {got.ref.sha256} "
                   f"(matches the status{'' if got.reused else '; every file matches its manifest'})", err=True)
        if print_paths:
            terminal.echo(str(got.path))
    if refused:
        raise RefusedError("\n".join(refused))
    return kept


@dataclass
class DownloadOptions:
    name: str = ""
    output_dir: Path | None = None
    pod: str | None = None
    kube: KubeFlags = field(default_factory=KubeFlags)
    s3: bool = False
    presigned: bool = False
    namespace: str = ""
    _client: Kube | None = field(default=None, repr=False)

    def validate(self) -> None:
        check_name(self.name, "NAME")
        if self.output_dir is not None:
            check_output_dir(self.output_dir)
        if self.s3 and self.presigned:
            raise click.UsageError("--s3 and --presigned: pick one (--s3 reads with your DEBUGCAP_S3_* settings, "
                                   "--presigned through URLs the operator hands out)")

    @property
    def via(self) -> str:
        return S3 if self.s3 else PRESIGNED if self.presigned else AUTO

    def complete(self) -> None:
        self._client = self.kube.load()
        self.namespace = self.kube.namespace or self._client.default_namespace

    def run(self) -> None:
        assert self._client is not None, "complete() first"
        out = self.output_dir or Path(".")
        try:
            obj = debugcaptures.read_one(self._client, self.namespace, self.name)
            kept = download_bundles(obj, lambda _ref: out, self.pod, kube=self._client, via=self.via)
        finally:
            self._client.close()
        if len(kept) == 1:
            terminal.echo(f"next: kubectl debugcap report {kept[0].path}", err=True)


@click.command("download")
@click.argument("name")
@click.option("-d", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory the bundles are written to (default: the current directory).")
@click.option("--pod", default=None, help="Only the bundle of this pod of the capture.")
@click.option("--s3", is_flag=True, help="Read with your own DEBUGCAP_S3_* settings only.")
@click.option("--presigned", is_flag=True,
              help="Read through presigned URLs the operator hands out (a DebugDownload), even with S3 settings.")
@kube_options
def download(name: str, output_dir: Path | None, pod: str | None, s3: bool, presigned: bool, **kube: Any) -> None:
    """Fetch a capture's bundles from S3 and verify them against the status and their manifests.

    S3 is reached with your own settings when you have them, the variables `create --upload`
    uses: DEBUGCAP_S3_ENDPOINT, DEBUGCAP_S3_ACCESS_KEY, DEBUGCAP_S3_SECRET_KEY
    (DEBUGCAP_S3_SECURE=false for plain HTTP). Without them, the operator is asked for presigned
    URLs valid a few minutes (a DebugDownload, deleted afterwards), which it gives to whoever may
    get the capture. A bundle whose size or SHA-256 differs from the status, or whose files fail
    their manifest, is deleted and the command exits 4. Each bundle's path is printed on stdout,
    with a .sha256 beside it for `kubectl debugcap verify` and `sha256sum -c`.

    \b
    Examples:
      kubectl debugcap download api-1-debug-full-20261123160000 -n prod -d ./evidence
      kubectl debugcap download api-leak-20261123160000 -n prod --pod api-7c9f-2
    """
    opts = DownloadOptions(name, output_dir, pod, KubeFlags(**kube), s3=s3, presigned=presigned)
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [download]
