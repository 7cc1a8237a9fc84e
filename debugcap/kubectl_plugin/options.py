"""Flags every command that talks to a cluster shares, defined once (like kubectl's cli-runtime)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

import click

from debugcap.kube.client import KubeTarget

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # a runtime failure: cluster, storage, bundle
    USAGE = 2  # click's own code for bad flags
    NOTHING_COLLECTED = 3  # the capture ran, but no collector produced anything useful
    VERIFY_FAILED = 4  # a bundle does not match its checksums


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


def kube_target(kubeconfig: str | None, context: str | None, request_timeout: float) -> KubeTarget:
    # KUBECONFIG may list several files; the Python client loads the first (kubectl merges them).
    first = kubeconfig.split(":")[0] if kubeconfig else None
    return KubeTarget(kubeconfig=first, context=context, request_timeout=request_timeout)
