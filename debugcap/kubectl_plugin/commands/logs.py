"""``kubectl debugcap logs NAME [-f]``: what the operator said and did about one capture, in order.

Two sources, one timeline: the capture's Events (started, each pod captured or failed, the
outcome; kept by the API server for an hour by default) and its status, the per-pod phase and
message the operator writes as it goes. Without ``-f`` the Events are printed, then where each pod
is now; with ``-f`` new Events and every change of a pod are printed as they come
(:func:`debugcap.kubectl_plugin.progress.follow`) until the capture ends. The operator's own
process log is not read: it is the cluster admin's, and the user may have no rights on its pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from debugcap import hints
from debugcap.kubectl_plugin import custom_objects, debugcaptures, terminal
from debugcap.kubectl_plugin.commands.captures import check_name
from debugcap.kubectl_plugin.describing import TERMINAL
from debugcap.kubectl_plugin.options import KubeFlags, kube_options

if TYPE_CHECKING:
    from debugcap.kube.client import Kube
    from debugcap.kubectl_plugin.progress import LogFeed


@dataclass
class LogsOptions:
    name: str = ""
    follow: bool = False
    timeout: str | None = None
    kube: KubeFlags = field(default_factory=KubeFlags)
    namespace: str = ""
    _timeout: float | None = field(default=None, repr=False)
    _events_allowed: bool = field(default=True, repr=False)
    _client: Kube | None = field(default=None, repr=False)

    def validate(self) -> None:
        from debugcap.kubectl_plugin.options import parse_duration

        check_name(self.name, "NAME")
        if self.timeout is not None:
            if not self.follow:
                raise click.UsageError("--timeout applies with -f/--follow")
            try:
                self._timeout = parse_duration(self.timeout)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--timeout") from exc

    def complete(self) -> None:
        self._client = self.kube.load()
        self.namespace = self.kube.namespace or self._client.default_namespace

    def run(self) -> None:
        from debugcap.kubectl_plugin.progress import LogFeed, follow

        assert self._client is not None, "complete() first"
        client, feed = self._client, LogFeed()
        try:
            obj = debugcaptures.read_one(client, self.namespace, self.name)
            self._print(client, feed, obj)
            if not self.follow:
                return
            for obj in follow(lambda: debugcaptures.read_if_present(client, self.namespace, self.name),
                              timeout=self._timeout):
                self._print(client, feed, obj)
        finally:
            client.close()

    def _print(self, client: Kube, feed: LogFeed, obj: dict[str, Any]) -> None:
        if self._events_allowed:
            events = custom_objects.events(client, obj)
            for line in feed.events(events or []):
                terminal.echo(line)
            if events is None:
                self._events_allowed = False  # said once; the status is still followed
                terminal.echo(f'note: not allowed to list events in namespace "{self.namespace}", showing the status '
                           f"only; {hints.ask_rights('list', 'events', self.namespace)}", err=True)
        status = obj.get("status") or {}
        # The status has no time per pod; an ended capture's states are as they were when it ended.
        ended = status.get("completionTime") if status.get("phase") in TERMINAL else None
        stamp = str(ended)[:19].replace("T", " ") if ended else datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        for line in feed.progress(obj, stamp):
            terminal.echo(line)


@click.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what happens until the capture ends.")
@click.option("--timeout", default=None, metavar="DURATION",
              help="With -f: stop following after this long, e.g. 10m (exit 1; the capture goes on).")
@kube_options
def logs(name: str, follow: bool, timeout: str | None, **kube: Any) -> None:
    """A capture's Events and each pod's progress; -f follows it until it ends.

    \b
    Examples:
      kubectl debugcap logs api-1-debug-full-20261123160000 -n prod
      kubectl debugcap logs api-1-debug-full-20261123160000 -n prod -f
    """
    opts = LogsOptions(name, follow, timeout, KubeFlags(**kube))
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [logs]
