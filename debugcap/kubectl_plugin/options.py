"""What every command shares: exit codes, the cluster flags (like kubectl's cli-runtime) and ``-o``.

Each command is an options object (kubectl ``rollout_restart.go``, Velero ``backup/create.go``):
a dataclass of its flags with ``validate()`` (reject flag combinations, naming the flags, before
anything is read or contacted), ``complete()`` (fill defaults from the kubeconfig) and ``run()``.
Errors of the ``DebugcapError`` family become click errors in one place, ``cli.DebugcapGroup``.

Nothing here imports the Kubernetes client: ``kubectl debugcap --help`` stays cheap.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # a runtime failure: cluster, storage, bundle
    USAGE = 2  # click's own code for bad flags
    NOTHING_COLLECTED = 3  # the capture ran, but no collector produced anything useful
    VERIFY_FAILED = 4  # a bundle does not match its checksums
    PARTIALLY_FAILED = 5  # create --wait: bundles were stored, but some pod or collector failed


def kube_options(fn: F) -> F:
    for option in reversed([
        click.option("-n", "--namespace", default=None, help="Namespace (default: the kubeconfig context's)."),
        click.option("--context", default=None, help="Kubeconfig context to use."),
        click.option("--kubeconfig", default=None, envvar="KUBECONFIG",
                     type=click.Path(dir_okay=False), help="Path to the kubeconfig file."),
        click.option("--request-timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
                     help="Seconds to wait for one API request."),
    ]):
        fn = option(fn)
    return fn


@dataclass(frozen=True)
class KubeFlags:
    """The values of :func:`kube_options`."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    request_timeout: float = 30.0

    def load(self) -> Kube:
        """The kubeconfig's credentials (reads the file, contacts nothing); raises ``ConfigError``."""
        from debugcap.kube.client import Kube, KubeTarget

        # KUBECONFIG may list several files; the Python client loads the first (kubectl merges them).
        first = self.kubeconfig.split(":")[0] if self.kubeconfig else None
        return Kube.load(KubeTarget(kubeconfig=first, context=self.context, request_timeout=self.request_timeout))


def output_option(*formats: str, default: str | None, help: str = "Output format.") -> Callable[[F], F]:
    """``-o/--output``: everywhere the format of what the command prints to stdout, one of
    ``table|wide|name|json|yaml`` (kubectl's names), never a file or anything else."""
    return click.option("-o", "--output", type=click.Choice(formats), default=default,
                        show_default=default is not None, help=help)


def print_document(doc: Any, output: str) -> None:
    """``doc`` as ``-o json`` (2-space indent) or ``-o yaml`` (keys in their order) on stdout."""
    if output == "json":
        import json

        click.echo(json.dumps(doc, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(doc, sort_keys=False))


def print_table(rows: list[list[str]]) -> None:
    """Columns padded to their widest cell, three spaces apart, as kubectl prints them."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
