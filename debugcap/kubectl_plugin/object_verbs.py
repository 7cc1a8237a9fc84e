"""The verbs the schedule and trigger nouns share: ``get``, ``describe``, ``suspend`` and ``resume``.

Options objects, like every command's: ``validate()`` checks the flags alone, ``complete()``
loads the kubeconfig and fills the namespace, ``run()`` acts. Which resource they act on is a
:class:`~debugcap.kubectl_plugin.columns.Resource`; ``get`` prints through the one printer,
:func:`~debugcap.kubectl_plugin.options.print_objects`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from debugcap.kubectl_plugin import custom_objects, terminal
from debugcap.kubectl_plugin.columns import Resource
from debugcap.kubectl_plugin.options import (
    KubeFlags,
    all_namespaces_option,
    check_listing,
    kube_options,
    output_option,
    print_objects,
)

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def check_name(name: str, resource: Resource, param_hint: str = "NAME") -> None:
    """An object's name is a DNS subdomain; anything else the API server would refuse (or 404)."""
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        raise click.BadParameter(f'"{name}" is not a {resource.kind} name: use lower-case letters, digits, '
                                 '"-" and "."', param_hint=param_hint)


@dataclass
class Connected:
    """Loads the kubeconfig in ``complete()``: the client and the namespace the verb acts in."""

    kube: KubeFlags
    namespace: str = field(default="", init=False)
    _client: Kube | None = field(default=None, init=False, repr=False)

    def complete(self) -> None:
        self._client = self.kube.load()
        self.namespace = self.kube.namespace or self._client.default_namespace

    @property
    def client(self) -> Kube:
        assert self._client is not None, "complete() first"
        return self._client


@dataclass
class GetOptions(Connected):
    resource: Resource = field(kw_only=True)
    name: str | None = field(default=None, kw_only=True)
    output: str = field(default="table", kw_only=True)
    all_namespaces: bool = field(default=False, kw_only=True)

    def validate(self) -> None:
        if self.name is not None:
            check_name(self.name, self.resource)
        check_listing(self.all_namespaces, self.kube.namespace, self.name, self.resource.plural)

    def run(self) -> None:
        namespace = None if self.all_namespaces else self.namespace
        try:
            items = custom_objects.read(self.client, self.resource, namespace, self.name)
        finally:
            self.client.close()
        print_objects(items, self.output, self.resource, listing=self.name is None, namespace=namespace)


# describe(object, captures it made (None: not listable), its Events (None: not listable), now)
Describer = Callable[[dict[str, Any], list[dict[str, Any]] | None, list[dict[str, Any]] | None, datetime],
                     Iterable[str]]


@dataclass
class DescribeOptions(Connected):
    """``describe NAME``: the object, the captures it made (found by ``label``) and its Events."""

    resource: Resource = field(kw_only=True)
    label: str = field(kw_only=True)
    describe: Describer = field(kw_only=True)
    name: str = field(default="", kw_only=True)

    def validate(self) -> None:
        check_name(self.name, self.resource)

    def run(self) -> None:
        try:
            obj = custom_objects.read_one(self.client, self.resource, self.namespace, self.name)
            made = custom_objects.captures(self.client, self.namespace, self.label, obj)
            events = custom_objects.events(self.client, obj)
        finally:
            self.client.close()
        for line in self.describe(obj, made, events, datetime.now(UTC)):
            terminal.echo(line)


def get_command(resource: Resource) -> click.Command:
    """The ``get [NAME]`` verb of a noun's group."""
    @click.argument("name", required=False)
    @all_namespaces_option
    @output_option("table", "wide", "name", "json", "yaml", default="table")
    @kube_options
    def command(name: str | None, all_namespaces: bool, output: str, namespace: str | None, context: str | None,
                kubeconfig: str | None, request_timeout: float) -> None:
        opts = GetOptions(KubeFlags(namespace, context, kubeconfig, request_timeout), resource=resource, name=name,
                          output=output, all_namespaces=all_namespaces)
        opts.validate()
        opts.complete()
        opts.run()

    command.__doc__ = f"List {resource.kind}s (or show one); -o wide adds the CRD's wide columns."
    return click.command("get")(command)


def describe_command(resource: Resource, label: str, describe: Describer, summary: str) -> click.Command:
    """The ``describe NAME`` verb of a noun's group."""
    @click.argument("name")
    @kube_options
    def command(name: str, namespace: str | None, context: str | None, kubeconfig: str | None,
                request_timeout: float) -> None:
        opts = DescribeOptions(KubeFlags(namespace, context, kubeconfig, request_timeout), resource=resource,
                               label=label, describe=describe, name=name)
        opts.validate()
        opts.complete()
        opts.run()

    command.__doc__ = summary
    return click.command("describe")(command)


@dataclass
class SuspendOptions(Connected):
    """``suspend`` (``spec.suspend: true``) or ``resume`` (false) of each NAME; one already so is
    said so, and not written."""

    resource: Resource = field(kw_only=True)
    names: tuple[str, ...] = field(default=(), kw_only=True)
    suspend: bool = field(default=True, kw_only=True)

    def validate(self) -> None:
        if not self.names:
            raise click.UsageError(f"name the {self.resource.plural} to {self.verb}")
        for name in self.names:
            check_name(name, self.resource)

    @property
    def verb(self) -> str:
        return "suspend" if self.suspend else "resume"

    def run(self) -> None:
        done = "suspended" if self.suspend else "resumed"
        try:
            for name in self.names:
                obj = custom_objects.read_one(self.client, self.resource, self.namespace, name)
                if bool((obj.get("spec") or {}).get("suspend", False)) == self.suspend:
                    terminal.echo(f"{self.resource.qualified}/{name} already {done}")
                    continue
                custom_objects.patch(self.client, self.resource, self.namespace, name,
                                     {"spec": {"suspend": self.suspend}})
                terminal.echo(f"{self.resource.qualified}/{name} {done}")
        finally:
            self.client.close()


def suspend_command(resource: Resource, verb: str, suspend: bool, summary: str) -> click.Command:
    """The ``suspend`` or ``resume`` verb of a noun's group."""
    @click.argument("names", nargs=-1, metavar="NAME...")
    @kube_options
    def command(names: tuple[str, ...], namespace: str | None, context: str | None, kubeconfig: str | None,
                request_timeout: float) -> None:
        opts = SuspendOptions(KubeFlags(namespace, context, kubeconfig, request_timeout), resource=resource,
                              names=names, suspend=suspend)
        opts.validate()
        opts.complete()
        opts.run()

    command.__doc__ = summary
    return click.command(verb)(command)
