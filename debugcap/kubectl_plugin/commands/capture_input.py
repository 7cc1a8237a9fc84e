"""A capture NAME where the analysis verbs take a file: ``report NAME``, ``top NAME``, ``goroutines NAME``.

An argument that is an existing file or directory is read as before. One that is not, and is
spelled like a DebugCapture name (no ``/``, no file suffix), names a capture: its bundle (its one
pod's, or ``--pod``'s) is downloaded into the cache (``$XDG_CACHE_HOME/debugcap/bundles``, else
``~/.cache/debugcap/bundles``), verified as ``download`` verifies it, and a cached copy with the
status's SHA-256 is reused. Anything else is click's own "does not exist".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from debugcap.kubectl_plugin.commands.captures import DNS_SUBDOMAIN
from debugcap.kubectl_plugin.options import KubeFlags, kube_options

F = TypeVar("F", bound=Callable[..., Any])
# What only a file is called: a missing "heap.pb.gz" is a typo of a path, not a capture.
FILE_SUFFIXES = (".gz", ".tgz", ".tar", ".pb", ".pprof", ".prof", ".txt", ".json", ".out", ".trace", ".html")


class CaptureName(str):
    """An argument that names a DebugCapture rather than a file."""


def looks_like_capture(value: str) -> bool:
    return bool(DNS_SUBDOMAIN.match(value)) and len(value) <= 253 and not value.lower().endswith(FILE_SUFFIXES)


class PathOrCapture(click.ParamType["Path | CaptureName"]):
    name = "path|capture"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | CaptureName:
        if isinstance(value, Path | CaptureName):
            return value
        path = Path(value)
        if path.exists():
            return path
        if looks_like_capture(str(value)):
            return CaptureName(value)
        self.fail(f"'{value}' does not exist (and is not a capture name)", param, ctx)


def capture_options(fn: F) -> F:
    """``--pod`` and the cluster flags, for an argument that may name a capture."""
    fn = click.option("--pod", default=None, help="With a capture NAME: the pod whose bundle to read.")(fn)
    return kube_options(fn)


def local_input(value: Path | CaptureName, pod: str | None, kube: dict[str, Any]) -> Path:
    """The path to read: ``value`` itself, or the cached, verified bundle of the capture it names."""
    if not isinstance(value, CaptureName):
        if pod is not None:
            raise click.UsageError(f"--pod applies to a capture NAME; {value} is a file")
        return value
    return cached_bundle(value, pod, KubeFlags(**kube))


def cached_bundle(name: str, pod: str | None, flags: KubeFlags) -> Path:
    from debugcap import errors
    from debugcap.kubectl_plugin import debugcaptures, fetching
    from debugcap.kubectl_plugin.commands.download import download_bundles

    try:
        client = flags.load()
    except errors.ConfigError as exc:  # a mistyped path reads as a capture name: say both
        raise errors.ConfigError(f"there is no file or directory '{name}', and as a capture name: {exc}") from exc
    namespace = flags.namespace or client.default_namespace
    try:
        try:
            obj = debugcaptures.read_one(client, namespace, name)
        except errors.NotFoundError as exc:
            raise debugcaptures.reworded(exc, f"there is no file or directory '{name}', and {exc}") from exc
        refs = fetching.bundle_refs(obj, pod)
        if len(refs) > 1:
            # Not a usage error (exit 2 means nothing was read): the capture was read to know it.
            raise errors.ConfigError(f'debugcapture "{name}" has a bundle per pod '
                                     f'({", ".join(r.pod for r in refs)}); pick one with --pod')
        root = fetching.cache_root()
        kept = download_bundles(obj, lambda ref: fetching.cache_dir(ref, root), refs[0].pod, print_paths=False,
                                kube=client)
    finally:
        client.close()
    return kept[0].path
