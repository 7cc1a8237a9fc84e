"""``kubectl debugcap templates [NAME]``: the capture templates and their parameters.

``-o`` means what it means everywhere: ``table`` a table (each template's parameters with their
defaults), ``wide`` with its collectors, ``name`` the names, ``json``/``yaml`` the documents. A
NAME in table form shows that template in full: every parameter's valid values and meaning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from debugcap import errors
from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.options import output_option, print_document, print_table

if TYPE_CHECKING:
    from debugcap.templates import Template


@click.command("templates")
@click.argument("name", required=False)
@output_option("table", "wide", "name", "json", "yaml", default="table")
def templates(name: str | None, output: str) -> None:
    """List capture templates and their parameters (NAME: one of them in full).

    \b
    Examples:
      kubectl debugcap templates
      kubectl debugcap templates go-leak
      kubectl debugcap templates -o wide
    """
    from debugcap import templates as catalog

    found = catalog.list_templates()
    if name is not None:
        found = [t for t in found if t.name == name]
        if not found:
            known = ", ".join(t.name for t in catalog.list_templates())
            raise click.BadParameter(f'"{name}" is not a built-in template; they are: {known}', param_hint="NAME")
    if output in ("json", "yaml"):
        docs = [_document(t) for t in found]
        print_document(docs[0] if name is not None else docs, output)
    elif output == "name":
        for t in found:
            terminal.echo(t.name)
    elif name is not None and output == "table":
        _details(found[0])
    else:
        wide = output == "wide"
        rows = [["NAME", "PARAMETERS", *(["COLLECTORS"] if wide else []), "DESCRIPTION"]]
        rows += [[t.name, ",".join(f"{p.name}={p.default}" for p in t.parameters.values()) or "<none>",
                  *([",".join(_collectors(t))] if wide else []), _first_sentence(t.description)] for t in found]
        print_table(rows)


def _details(t: Template) -> None:
    terminal.echo(f"{t.name}\n  {t.description}")
    for p in t.parameters.values():
        terminal.echo(f"    {p.name} = {p.default}  ({p.describe_valid()}) {p.description}")
    terminal.echo(f"  collectors: {', '.join(_collectors(t))}")


def _first_sentence(text: str) -> str:
    """The description's headline: the descriptions open with one, before a colon."""
    headline = " ".join(text.split()).split(". ")[0].split(": ")[0].removesuffix(".")
    return errors.shorten(headline, 60)


def _collectors(t: Template) -> list[str]:
    return list(dict.fromkeys(s.collector for s in t.steps))


def _document(t: Template) -> dict[str, Any]:
    return {"name": t.name, "description": t.description,
            "parameters": [{"name": p.name, "default": p.default, "valid": p.describe_valid(),
                            "description": p.description} for p in t.parameters.values()],
            "collectors": _collectors(t)}


COMMANDS: list[click.Command] = [templates]
