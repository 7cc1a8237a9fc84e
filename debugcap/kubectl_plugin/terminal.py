"""Text from a bundle or a pod, made safe to print on the user's terminal.

Member names, manifest fields, log lines, error bodies, goroutine labels and object fields come
from a pod or from a bundle someone sent: an escape sequence among them (``ESC ]0;...BEL`` retitles
the window, ``ESC [2J`` clears it, OSC 52 writes the clipboard) would act on the terminal that
prints it. Every line the plugin prints goes through :func:`echo` (or :func:`clean`): control
characters other than newline and tab become visible escapes (``\\x1b``, ``\\u202e``), so what
was in the bundle is still told, just not obeyed. ``-o json`` and ``-o yaml`` escape them already.
"""

from __future__ import annotations

import re
from typing import Any

import click

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode format characters that
# reorder or hide text (bidi overrides and isolates, line and paragraph separators).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """``text`` with every control character but newline and tab escaped (``\\x1b``)."""
    return _CONTROL.sub(_escape, text)


_LINE_BREAKS = re.compile("[\t\n\r]")


def one_line(text: str) -> str:
    """:func:`clean`, and tabs and line breaks escaped too: for a table cell or a live line, where
    a line break from a pod would add a line the redraw does not count."""
    return _LINE_BREAKS.sub(_escape, clean(text))


def echo(message: Any = None, *, err: bool = False, nl: bool = True) -> None:
    """:func:`click.echo` of ``message`` with its control characters escaped."""
    click.echo(None if message is None else clean(str(message)), err=err, nl=nl)
