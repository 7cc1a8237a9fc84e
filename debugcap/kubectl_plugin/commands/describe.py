"""``kubectl debugcap describe NAME``: one DebugCapture in full, as ``kubectl describe`` shows objects.

Spec, phase and conditions, per pod its result, bundle and findings, the trigger that fired it,
its Events and the next command to run (:mod:`debugcap.kubectl_plugin.describing` writes the
text). ``-o json|yaml`` prints the object instead. A user who may read DebugCaptures but not
Events still gets the capture, with a line saying why the Events are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from debugcap import hints
from debugcap.kubectl_plugin import custom_objects, debugcaptures, terminal
from debugcap.kubectl_plugin.commands.captures import check_name
from debugcap.kubectl_plugin.options import KubeFlags, kube_options, output_option, print_document

if TYPE_CHECKING:
    from debugcap.kube.client import Kube


@dataclass
class DescribeOptions:
    names: tuple[str, ...] = ()
    output: str | None = None
    kube: KubeFlags = field(default_factory=KubeFlags)
    namespace: str = ""
    _client: Kube | None = field(default=None, repr=False)

    def validate(self) -> None:
        if not self.names:
            raise click.UsageError(f"name the capture to describe; {hints.list_captures('NAMESPACE')}")
        for name in self.names:
            check_name(name, "NAME")

    def complete(self) -> None:
        self._client = self.kube.load()
        self.namespace = self.kube.namespace or self._client.default_namespace

    def run(self) -> None:
        assert self._client is not None, "complete() first"
        client = self._client
        try:
            objs = [debugcaptures.read_one(client, self.namespace, name) for name in self.names]
            if self.output is not None:
                print_document(objs[0] if len(objs) == 1 else {"apiVersion": "v1", "kind": "List", "items": objs},
                               self.output)
                return
            for i, obj in enumerate(objs):
                if i:
                    terminal.echo()
                self._describe(client, obj)
        finally:
            client.close()

    def _describe(self, client: Kube, obj: dict[str, Any]) -> None:
        from debugcap.kubectl_plugin import describing

        events = custom_objects.events(client, obj)
        note = ""
        if events is None:
            note = (f'<not allowed to list events in namespace "{self.namespace}"; '
                    f"{hints.ask_rights('list', 'events', self.namespace)}>")
        for line in describing.describe(obj, events, datetime.now(UTC), note):
            terminal.echo(line)


@click.command("describe")
@click.argument("names", nargs=-1, metavar="NAME...")
@output_option("json", "yaml", default=None, help="Print the DebugCapture in this format instead of describing it.")
@kube_options
def describe(names: tuple[str, ...], output: str | None, **kube: Any) -> None:
    """Show a capture in full: spec, phase, per-pod results, bundles, failed collectors, findings, Events.

    \b
    Examples:
      kubectl debugcap describe api-1-debug-full-20261123160000 -n prod
      kubectl debugcap describe api-1-debug-full-20261123160000 -n prod -o yaml
    """
    opts = DescribeOptions(names, output, KubeFlags(**kube))
    opts.validate()
    opts.complete()
    opts.run()


COMMANDS: list[click.Command] = [describe]
