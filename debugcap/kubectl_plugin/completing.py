"""Shell completion: verbs and flags from click, names of things from the cluster.

Two ways in, one answer:

* ``kubectl debugcap <TAB>``: kubectl 1.26+ completes a plugin's arguments by running the
  executable ``kubectl_complete-<plugin>`` found on PATH (a console script of this package) with
  the words after the plugin's name, the last one the word being completed (``""`` for a new
  one), and reads cobra's ``__complete`` answer: a ``value<TAB>description`` line per choice, then
  ``:<directive>`` (4: no file completion; 0: complete files; 16: directories).
* ``kubectl-debugcap <TAB>``: the script ``kubectl debugcap completion bash|zsh|fish`` prints is
  click's own; the classes registered below give it the same names.

Names (captures, schedules, triggers, templates, pods, namespaces) are read from the cluster with
the flags typed so far (``-n``, ``--context``, ``--kubeconfig``, ``--as``) and a short timeout.
A completion never prints an error: a cluster that does not answer completes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    _resolve_context,
    _resolve_incomplete,
    add_completion_class,
)

from debugcap.kubectl_plugin.cli import COMPLETE_VAR
from debugcap.kubectl_plugin.options import KubeFlags, lineage

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

SCRIPT_PROG: Final = "kubectl-debugcap"  # what the shell scripts complete: the executable's name
NAME_TIMEOUT: Final = 2.0  # seconds for each request that lists names: a TAB must not hang
# cobra's ShellCompDirective values (spf13/cobra completions.go).
NO_SPACE: Final = 2
NO_FILE_COMP: Final = 4
FILE_COMP: Final = 0
FILTER_DIRS: Final = 16
# Target kinds ``create`` and ``schedule create`` take, and where their objects are listed.
KIND_PATHS: Final = {"pod": ("", "v1", "pods"), "deployment": ("apps", "v1", "deployments"),
                     "statefulset": ("apps", "v1", "statefulsets"), "daemonset": ("apps", "v1", "daemonsets"),
                     "replicaset": ("apps", "v1", "replicasets")}
# Verbs whose NAME is a new object's, which completion cannot know.
NEW_NAMES: Final = frozenset({"create"})


def cluster_names(ctx: click.Context, param: click.Command | click.Parameter, incomplete: str,
                  lister: Callable[[KubeFlags, str, str | None], list[str]] | None = None
                  ) -> list[CompletionItem[str]] | None:
    """The names ``param`` takes, read from the cluster, or None when click completes it itself
    (verbs, flags, choices, files)."""
    if not isinstance(param, click.Parameter):
        return None
    listing = lister or list_names
    kind = what_names(ctx, param, incomplete)
    if kind is None:
        return None
    if kind == "capture-or-file":
        # report/top/goroutines take a file or a capture's name: both are offered. The file item
        # first: click's bash script empties its answer at a file item, which would drop the names.
        names = listing(KubeFlags.of(ctx), "debugcaptures", None)
        files = CompletionItem(incomplete, type="file")
        return [files, *(CompletionItem(n) for n in names if n.startswith(incomplete))]
    if kind == "context":
        return [CompletionItem(n) for n in contexts(KubeFlags.of(ctx)) if n.startswith(incomplete)]
    if kind == "template":
        names = builtin_templates() + listing(KubeFlags.of(ctx), "debugcapturetemplates", None)
        return [CompletionItem(n) for n in dict.fromkeys(names) if n.startswith(incomplete)]
    if kind == "target":
        # As kubectl logs completes: pods by name (pod/NAME), a workload after its kind and "/".
        prefix, sep, _ = incomplete.partition("/")
        kinds = [prefix] if sep else list(KIND_PATHS)
        found = [f"{k}/{n}" for k in kinds if k in KIND_PATHS and (sep or k == "pod")
                 for n in listing(KubeFlags.of(ctx), KIND_PATHS[k][2], None)]
        found += [] if sep else [f"{k}/" for k in KIND_PATHS if k != "pod"]
        return [CompletionItem(n) for n in found if n.startswith(incomplete)]
    return [CompletionItem(n) for n in listing(KubeFlags.of(ctx), kind, None) if n.startswith(incomplete)]


def what_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> str | None:
    """Which names complete ``param``: a resource's plural, "context", "template", "target",
    "capture-or-file", or None."""
    name = param.name or ""
    if isinstance(param, click.Option):
        return {"namespace": "namespaces", "context": "context", "template": "template",
                "pod": "pods"}.get(name)
    if name == "target":
        return "target"
    if getattr(param.type, "name", "") == "path|capture":  # capture_input.PathOrCapture, not imported for a TAB
        return "capture-or-file"
    if name not in ("name", "names") or ctx.command.name in NEW_NAMES:
        return None
    if ctx.command.name == "templates":
        return "template"
    nouns = {c.command.name for c in lineage(ctx)}
    if "schedule" in nouns:
        return "debugschedules"
    if "trigger" in nouns:
        return "debugtriggers"
    return "debugcaptures"


def list_names(flags: KubeFlags, plural: str, namespace: str | None) -> list[str]:
    """Names of ``plural`` in the namespace the command line names (or the context's); [] on any
    failure: completion says nothing rather than an error."""
    try:
        quick = KubeFlags(flags.namespace, flags.context, flags.kubeconfig, NAME_TIMEOUT, flags.impersonate,
                          flags.impersonate_groups)
        kube = quick.load()
        # One attempt: urllib3's three retries would make a TAB on a silent API server last 4 x the timeout.
        kube.configuration.retries = False
        try:
            return _names(kube, plural, namespace or flags.namespace or kube.default_namespace)
        finally:
            kube.close()
    except Exception:  # a completion shows names or nothing, never a traceback
        return []


def _names(kube: Kube, plural: str, namespace: str) -> list[str]:
    from debugcap import resources
    from debugcap.kube.client import core_path, group_path

    if plural == "namespaces":
        path = core_path("namespaces")
    elif plural in (resources.CAPTURES, resources.SCHEDULES, resources.TRIGGERS):
        path = group_path(resources.GROUP, resources.VERSION, plural, namespace)
    elif plural == resources.TEMPLATES:
        path = group_path(resources.GROUP, resources.VERSION, plural)  # cluster-scoped
    else:
        group, version, _ = next(v for v in KIND_PATHS.values() if v[2] == plural)
        path = core_path(plural, namespace) if not group else group_path(group, version, plural, namespace)
    listed: Any = kube.get_json(path, [("limit", "500")])
    return sorted(str(i["metadata"]["name"]) for i in listed.get("items") or [])


def builtin_templates() -> list[str]:
    try:
        from debugcap import templates

        return [t.name for t in templates.list_templates()]
    except Exception:  # see list_names
        return []


def contexts(flags: KubeFlags) -> list[str]:
    """The kubeconfig's context names (the file only, no cluster)."""
    import os
    from pathlib import Path

    import yaml

    path = (flags.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(":")[0]
    try:
        doc = yaml.safe_load(Path(path).read_text())
        return [str(c["name"]) for c in doc.get("contexts") or []]
    except Exception:  # see list_names
        return []


class _ClusterNames(ShellComplete):
    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem[str]]:
        ctx = _resolve_context(self.cli, self.ctx_args, self.prog_name, args)
        obj, incomplete = _resolve_incomplete(ctx, args, incomplete)
        found = cluster_names(ctx, obj, incomplete)
        return found if found is not None else obj.shell_complete(ctx, incomplete)


class Bash(_ClusterNames, BashComplete):
    pass


class Zsh(_ClusterNames, ZshComplete):
    pass


class Fish(_ClusterNames, FishComplete):
    pass


SHELLS: Final[dict[str, type[ShellComplete]]] = {"bash": Bash, "zsh": Zsh, "fish": Fish}
for _shell, _cls in SHELLS.items():
    add_completion_class(_cls, _shell)


def script(shell: str, cli: click.Command) -> str:
    """The completion script of ``shell`` for the ``kubectl-debugcap`` executable."""
    return SHELLS[shell](cli, {}, SCRIPT_PROG, COMPLETE_VAR).source()


def cobra_lines(cli: click.Command, words: list[str]) -> list[str]:
    """kubectl's plugin completion answer to ``words`` (the last one being completed)."""
    args, incomplete = (words[:-1], words[-1]) if words else ([], "")
    items = _ClusterNames(cli, {}, "kubectl debugcap", COMPLETE_VAR).get_completions(args, incomplete)
    out, directive = [], NO_FILE_COMP
    if items and all(str(i.value).endswith("/") for i in items):
        directive |= NO_SPACE  # "deployment/": the name comes next, with no space before it
    for item in items:
        if item.type == "file":
            directive = FILE_COMP
        elif item.type == "dir":
            directive = FILTER_DIRS
        else:
            help_text = " ".join((item.help or "").split())
            out.append(f"{item.value}\t{help_text}" if help_text else str(item.value))
    return [*out, f":{directive}"]


def main() -> None:
    """``kubectl_complete-debugcap WORD...``: what kubectl runs on ``kubectl debugcap ... <TAB>``."""
    import warnings

    warnings.simplefilter("ignore")
    try:
        from debugcap.kubectl_plugin.cli import cli

        lines = cobra_lines(cli, sys.argv[1:])
    except Exception:  # see list_names
        lines = [f":{NO_FILE_COMP}"]
    sys.stdout.write("".join(f"{line}\n" for line in lines))
