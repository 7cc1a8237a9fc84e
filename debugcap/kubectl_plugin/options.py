"""What every command shares: exit codes, the cluster flags (like kubectl's cli-runtime) and ``-o``.

Each command is an options object (kubectl ``rollout_restart.go``, Velero ``backup/create.go``):
a dataclass of its flags with ``validate()`` (reject flag combinations, naming the flags, before
anything is read or contacted), ``complete()`` (fill defaults from the kubeconfig) and ``run()``.
Errors of the ``DebugcapError`` family become click errors in one place, ``cli.DebugcapGroup``.

Nothing here imports the Kubernetes client: ``kubectl debugcap --help`` stays cheap.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from debugcap.kubectl_plugin import terminal

if TYPE_CHECKING:
    from debugcap.kube.client import Kube
    from debugcap.kubectl_plugin.columns import Resource

F = TypeVar("F", bound=Callable[..., Any])


# The table docs/plugin.md#exit-codes shows; a unit test keeps the two the same.
class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # a runtime failure: cluster, storage, bundle
    USAGE = 2  # click's own code for bad flags
    NOTHING_COLLECTED = 3  # the capture ran, but no collector produced anything useful
    VERIFY_FAILED = 4  # a bundle does not match its checksums
    PARTIALLY_FAILED = 5  # create --wait: bundles were stored, but some pod or collector failed


DEFAULT_REQUEST_TIMEOUT = 30.0
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds of a duration as kubectl reads its ``--request-timeout`` and ``--timeout`` (client-go
    ``ParseTimeout``): a whole number of seconds (``30``), or a Go duration (``30s``, ``1m``,
    ``1h30m``, ``500ms``). ValueError, naming the forms, otherwise."""
    value = text.strip()
    if value.isdigit():
        return float(value)
    rest, total = value.removeprefix("+"), 0.0
    if value in ("", "+") or value.startswith("-"):
        rest = "-"  # refused below, with the same words
    while rest:
        match = _GO_DURATION.match(rest)
        if match is None:
            raise ValueError(f'"{text}" is not a duration; use e.g. 90s, 10m or 1h30m')
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        rest = rest[match.end():]
    return total


def _request_timeout(ctx: click.Context, param: click.Parameter, value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_duration(str(value))
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a timeout: a whole number of seconds or a duration like 30s, '
                                 "1m or 1h (0: no limit)", ctx, param) from None


# kubectl's impersonation flags are global there; here every verb has them, and they reach
# KubeFlags through the click context, so a verb cannot forget to pass them on and the verbs'
# signatures stay the four kube flags they always had.
_IMPERSONATION = "debugcap.impersonation"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value:
        ctx.meta.setdefault(_IMPERSONATION, {})[param.name] = value
    return value


def _given(key: str) -> Any:
    ctx = click.get_current_context(silent=True)
    return (ctx.meta.get(_IMPERSONATION) or {}).get(key) if ctx is not None else None


def kube_options(fn: F) -> F:
    for option in reversed([
        click.option("-n", "--namespace", default=None, help="Namespace (default: the kubeconfig context's)."),
        click.option("--context", default=None, help="Kubeconfig context to use."),
        click.option("--kubeconfig", default=None, envvar="KUBECONFIG",
                     type=click.Path(dir_okay=False), help="Path to the kubeconfig file."),
        click.option("--request-timeout", default="30s", metavar="DURATION", callback=_request_timeout,
                     help="How long one API request may take: seconds, or a duration like 30s or 1m "
                          "(0: no limit).", show_default=True),
        click.option("--as", "as_user", default=None, metavar="USER", expose_value=False, callback=_remember,
                     help="User to impersonate for the operation (kubectl's --as)."),
        click.option("--as-group", "as_groups", multiple=True, metavar="GROUP", expose_value=False,
                     callback=_remember, help="Group to impersonate, repeatable (with --as)."),
    ]):
        fn = option(fn)
    return fn


def all_namespaces_option(fn: F) -> F:
    """``-A/--all-namespaces``: for verbs that list."""
    return click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True,
                        help="List the objects of every namespace.")(fn)


def check_listing(all_namespaces: bool, namespace: str | None, name: str | None, noun: str = "objects") -> None:
    """``-A`` lists: it takes no NAME, and not ``-n`` (kubectl ignores one of them; here it is an error)."""
    if all_namespaces and name is not None:
        raise click.UsageError(f"-A/--all-namespaces lists {noun}; a NAME is read in one namespace (-n)")
    if all_namespaces and namespace:
        raise click.UsageError("-A/--all-namespaces and -n/--namespace: pick one")


@dataclass(frozen=True)
class KubeFlags:
    """The values of :func:`kube_options`. ``impersonate`` and ``impersonate_groups`` default to the
    command line's ``--as`` and ``--as-group``."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    impersonate: str | None = field(default_factory=lambda: _given("as_user"))
    impersonate_groups: tuple[str, ...] = field(default_factory=lambda: tuple(_given("as_groups") or ()))

    def __post_init__(self) -> None:
        if self.impersonate_groups and not self.impersonate:
            # As kubectl: the API server refuses groups without a user to impersonate.
            raise click.UsageError("--as-group needs --as USER: groups are impersonated with a user")

    @classmethod
    def of(cls, ctx: click.Context) -> KubeFlags:
        """The kube flags given so far on a command line click parsed into ``ctx`` (for completion,
        which runs no command)."""
        params: dict[str, Any] = {}
        for c in reversed(lineage(ctx)):  # a subcommand's flag over its group's
            params.update({k: v for k, v in c.params.items() if v is not None})
        given = ctx.meta.get(_IMPERSONATION) or {}
        timeout = params.get("request_timeout")
        return cls(namespace=params.get("namespace"), context=params.get("context"),
                   kubeconfig=params.get("kubeconfig"),
                   request_timeout=timeout if isinstance(timeout, float) else DEFAULT_REQUEST_TIMEOUT,
                   impersonate=given.get("as_user"),
                   impersonate_groups=tuple(given.get("as_groups") or ()) if given.get("as_user") else ())

    def load(self) -> Kube:
        """The kubeconfig's credentials (reads the file, contacts nothing); raises ``ConfigError``."""
        from debugcap.kube.client import Kube, KubeTarget

        # KUBECONFIG may list several files; the Python client loads the first (kubectl merges them).
        first = self.kubeconfig.split(":")[0] if self.kubeconfig else None
        return Kube.load(KubeTarget(kubeconfig=first, context=self.context, request_timeout=self.request_timeout,
                                    impersonate_user=self.impersonate, impersonate_groups=self.impersonate_groups))


def lineage(ctx: click.Context) -> list[click.Context]:
    """``ctx`` and its parents, innermost first."""
    out: list[click.Context] = []
    current: click.Context | None = ctx
    while current is not None:
        out.append(current)
        current = current.parent
    return out


def output_option(*formats: str, default: str | None, help: str = "Output format.") -> Callable[[F], F]:
    """``-o/--output``: everywhere the format of what the command prints to stdout, one of
    ``table|wide|name|json|yaml`` (kubectl's names), never a file or anything else."""
    return click.option("-o", "--output", type=click.Choice(formats), default=default,
                        show_default=default is not None, help=help)


def print_document(doc: Any, output: str) -> None:
    """``doc`` as ``-o json`` (2-space indent) or ``-o yaml`` (keys in their order) on stdout."""
    if output == "json":
        import json

        terminal.echo(json.dumps(doc, indent=2))
    else:
        import yaml

        terminal.echo(yaml.safe_dump(doc, sort_keys=False))


def create_output_options(kind: str) -> Callable[[F], F]:
    """``-o yaml|json|name`` and ``--dry-run=none|client`` of a ``create``, as kubectl's: ``-o``
    prints the object created (as the API server wrote it) instead of the "created" line;
    ``--dry-run=client`` creates nothing and prints what would be sent."""
    def add(fn: F) -> F:
        fn = click.option("--dry-run", type=click.Choice(["none", "client"]), default="none", show_default=True,
                          help=f"client: print the {kind} that would be created (-o yaml|json), create nothing.")(fn)
        return output_option("yaml", "json", "name", default=None,
                             help=f"Print the {kind} created in this format (with --dry-run=client: "
                                  "the one that would be).")(fn)
    return add


def print_created(obj: dict[str, Any], output: str | None, qualified: str, *, dry_run: bool) -> None:
    """What a ``create`` prints on stdout: the object in ``-o``'s format, or kubectl's line."""
    if output in ("yaml", "json"):
        print_document(obj, output)
    else:
        name = obj["metadata"]["name"]
        terminal.echo(f"{qualified}/{name}" if output == "name" else
                   f"{qualified}/{name} created" + (" (dry run)" if dry_run else ""))


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as kubectl's tabwriter lays them out: every column but the last padded to its widest
    cell plus 3, and at least 6; a cell is cut at its first line break, marked "..."."""
    cells = [[_one_line(c) for c in r] for r in rows]
    if not cells:
        return []
    widths = [max(6, max(len(r[i]) for r in cells) + 3) for i in range(len(cells[0]) - 1)]
    return ["".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + r[-1] for r in cells]


def _one_line(cell: str) -> str:
    cut = min((i for i in (cell.find(c) for c in "\n\r\f") if i >= 0), default=-1)
    return cell if cut < 0 else cell[:cut] + "..."


def print_table(rows: list[list[str]]) -> None:
    for line in table_lines(rows):
        terminal.echo(line.rstrip())


def print_objects(items: list[dict[str, Any]], output: str, resource: Resource, *, listing: bool,
                  namespace: str | None = None, now: datetime | None = None) -> None:
    """The one printer of debugcap.io objects, for every ``get``: ``-o table`` the CRD's columns,
    ``wide`` with its priority-1 columns, ``name`` ``kind.group/NAME`` lines, ``json``/``yaml``
    the object (a ``List`` of them when listing). ``namespace`` None is a listing of every
    namespace: the table starts with a NAMESPACE column, as kubectl's does."""
    if output in ("json", "yaml"):
        print_document({"apiVersion": "v1", "kind": "List", "items": items} if listing else items[0], output)
        return
    if output == "name":
        for item in items:
            terminal.echo(f"{resource.qualified}/{item['metadata']['name']}")
        return
    if not items:
        where = f" in {namespace} namespace" if namespace else ""
        terminal.echo(f"No resources found{where}.", err=True)
        return
    from debugcap.kubectl_plugin import columns

    shown, wide = resource.columns(), output == "wide"
    rows = [columns.header(shown, wide=wide)] + [columns.row(i, shown, wide=wide, now=now) for i in items]
    if listing and namespace is None:
        rows = [["NAMESPACE", *rows[0]]] + [[i["metadata"].get("namespace", ""), *r]
                                            for i, r in zip(items, rows[1:], strict=True)]
    print_table(rows)
