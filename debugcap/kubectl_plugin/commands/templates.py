"""``kubectl debugcap templates``: the capture templates and their parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from debugcap.kubectl_plugin.options import output_option, print_document

if TYPE_CHECKING:
    from debugcap.templates import Template


@click.command("templates")
@output_option("table", "name", "json", "yaml", default="table")
def templates(output: str) -> None:
    """List capture templates and their parameters.

    \b
    Examples:
      kubectl debugcap templates
      kubectl debugcap templates -o name
    """
    from debugcap import templates as catalog

    found = catalog.list_templates()
    if output in ("json", "yaml"):
        print_document([_document(t) for t in found], output)
        return
    for t in found:
        if output == "name":
            click.echo(t.name)
            continue
        click.echo(f"{t.name}\n  {t.description}")
        for p in t.parameters.values():
            click.echo(f"    {p.name} = {p.default}  ({p.describe_valid()}) {p.description}")
        click.echo(f"  collectors: {', '.join(_collectors(t))}\n")


def _collectors(t: Template) -> list[str]:
    return list(dict.fromkeys(s.collector for s in t.steps))


def _document(t: Template) -> dict[str, Any]:
    return {"name": t.name, "description": t.description,
            "parameters": [{"name": p.name, "default": p.default, "valid": p.describe_valid(),
                            "description": p.description} for p in t.parameters.values()],
            "collectors": _collectors(t)}


COMMANDS: list[click.Command] = [templates]
