"""``kubectl debugcap delete NAME... | --all | -l SELECTOR``: captures, and with them their bundles.

Deleting a DebugCapture deletes its bundles: the operator's finalizer removes them from the store
before the object goes (``operator/captures.py``, ``delete_capture_bundles``), since the object is
the only handle on them. Evidence cannot be fetched again, so the command lists what goes and
asks first; ``--yes`` answers for scripts, and without a terminal to ask on, ``--yes`` is
required (a usage error naming it, before anything is read). Like ``kubectl delete`` it then waits
until the objects are gone, which is when the bundles are gone too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from debugcap import errors
from debugcap.kubectl_plugin import debugcaptures, terminal
from debugcap.kubectl_plugin.commands.captures import check_name
from debugcap.kubectl_plugin.options import KubeFlags, kube_options

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

DEFAULT_WAIT = "60s"


def bundle_count(obj: dict[str, Any]) -> int:
    pods = (obj.get("status") or {}).get("pods") or []
    return sum(1 for p in pods if (p.get("bundle") or {}).get("key") or p.get("uploadKey"))


def plan_lines(objs: list[dict[str, Any]], namespace: str) -> list[str]:
    """What the question shows: each capture, its phase and how many bundles go with it."""
    bundles = sum(bundle_count(o) for o in objs)
    lines = [f'{len(objs)} debugcapture(s) in namespace "{namespace}" and their {bundles} stored bundle(s) '
             "will be deleted:"]
    for obj in objs:
        status = obj.get("status") or {}
        lines.append(f"  {obj['metadata']['name']}  ({status.get('phase') or 'Pending'}, "
                     f"{bundle_count(obj)} bundle(s))")
    return lines


@dataclass
class DeleteOptions:
    names: tuple[str, ...] = ()
    all: bool = False
    selector: str | None = None
    yes: bool = False
    wait: bool = True
    timeout: str = DEFAULT_WAIT
    kube: KubeFlags = field(default_factory=KubeFlags)
    interactive: bool = field(default_factory=lambda: sys.stdin.isatty())
    confirm: Callable[[str], bool] = field(default=lambda q: click.confirm(q, default=False, err=True), repr=False)
    namespace: str = ""
    _timeout: float = field(default=0.0, repr=False)
    _client: Kube | None = field(default=None, repr=False)

    def validate(self) -> None:
        from debugcap.kubectl_plugin.options import parse_duration

        given = [flag for flag, on in (("NAME", bool(self.names)), ("--all", self.all),
                                       ("-l/--selector", self.selector is not None)) if on]
        if len(given) != 1:
            raise click.UsageError("name the captures to delete: NAME..., --all or -l/--selector" if not given
                                   else f"{' and '.join(given)}: give only one of NAME..., --all, -l/--selector")
        for name in self.names:
            check_name(name, "NAME")
        try:
            self._timeout = parse_duration(self.timeout)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timeout") from exc
        if not self.yes and not self.interactive:
            raise click.UsageError("deleting captures deletes their bundles, and there is no terminal to ask on: "
                                   "add --yes to delete without asking")

    def complete(self) -> None:
        self._client = self.kube.load()
        self.namespace = self.kube.namespace or self._client.default_namespace

    def run(self) -> None:
        assert self._client is not None, "complete() first"
        client = self._client
        try:
            objs = self._targets(client)
            if not objs:
                terminal.echo(f'No debugcaptures found in namespace "{self.namespace}" to delete.', err=True)
                return
            lines = plan_lines(objs, self.namespace)
            if not self.yes:
                terminal.echo("\n".join(lines), err=True)
                if not self.confirm("Delete them?"):
                    raise click.ClickException("nothing deleted")
            deleted = []
            for obj in objs:  # each told as it goes: a refusal later must not hide what was deleted
                name = obj["metadata"]["name"]
                if debugcaptures.delete(client, self.namespace, name):
                    deleted.append(name)
                    terminal.echo(f"debugcapture.debugcap.io/{name} deleted")
            if self.wait:
                self._wait_gone(client, deleted)
        finally:
            client.close()

    def _targets(self, client: Kube) -> list[dict[str, Any]]:
        if self.names:  # every name must exist: a typo is an error before anything is deleted
            return [debugcaptures.read_one(client, self.namespace, n) for n in dict.fromkeys(self.names)]
        return debugcaptures.select(client, self.namespace, self.selector)

    def _wait_gone(self, client: Kube, names: list[str], sleep: Callable[[float], None] = time.sleep) -> None:
        """Until the operator's finalizer has deleted the bundles and the objects are gone."""
        deadline = time.monotonic() + self._timeout
        left = list(names)
        while left:
            left = [n for n in left if debugcaptures.read_if_present(client, self.namespace, n) is not None]
            if not left:
                return
            if time.monotonic() >= deadline:
                raise errors.DebugcapError(
                    f"{', '.join(left)} still there after {self.timeout}: the operator deletes the bundles before "
                    "the object goes; is it running? (kubectl get pods -l app.kubernetes.io/name=debugcap -A); "
                    f"see: kubectl debugcap describe {left[0]} -n {self.namespace}")
            sleep(1.0)


@click.command("delete")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--all", "all_", is_flag=True, help="Delete every capture of the namespace.")
@click.option("-l", "--selector", default=None, help="Delete the captures whose labels match, e.g. app=api.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask; required without a terminal.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the captures, and so their bundles, are gone.")
@click.option("--timeout", default=DEFAULT_WAIT, show_default=True, metavar="DURATION",
              help="How long --wait waits, e.g. 90s or 5m.")
@kube_options
def delete(names: tuple[str, ...], all_: bool, selector: str | None, yes: bool, wait: bool, timeout: str,
           **kube: Any) -> None:
    """Delete captures and, through the operator, their bundles in S3; asks first unless --yes.

    \b
    Examples:
      kubectl debugcap delete api-1-debug-full-20261123160000 -n prod
      kubectl debugcap delete -l debugcap.io/schedule=nightly -n prod --yes
      kubectl debugcap delete --all -n scratch --yes
    """
    opts = DeleteOptions(names, all_, selector, yes, wait, timeout, KubeFlags(**kube))
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [delete]
