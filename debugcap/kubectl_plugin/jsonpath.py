"""The JSONPath of a CRD's ``additionalPrinterColumns``, evaluated as the API server evaluates it.

The API server builds each column with ``k8s.io/client-go/util/jsonpath`` (``{`` + jsonPath +
``}``, missing keys allowed) and shows the first result. This is the subset of that dialect
columns use: ``.field`` (a ``\\`` escapes a dot: ``.metadata.labels.app\\.kubernetes\\.io/name``),
``['field']``, ``..field`` (recursive), ``[*]`` and ``.*``, indexes and slices (``[0]``, ``[-1]``,
``[1:3]``), unions (``[0,2]``, ``['a','b']``) and filters (``[?(@.type=="Ready")]``, ``!=``,
``<``, ``<=``, ``>``, ``>=``, and ``[?(@.field)]`` for "has it"). What it does not know (``$``
functions, ``range``/``end`` templates, literals outside filters) raises :class:`JSONPathError`,
as the API server refuses such a CRD.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Step = Callable[[Any], Iterator[Any]]

_TERMINATORS = set(" \t.,[]$@{}()")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?$")


class JSONPathError(ValueError):
    """A path this dialect cannot read."""


@dataclass(frozen=True)
class JSONPath:
    """A parsed path: :meth:`find` gives every value it reaches, in document order."""

    text: str
    steps: tuple[Step, ...]

    def find(self, doc: Any) -> list[Any]:
        values = [doc]
        for step in self.steps:
            values = [found for value in values for found in step(value)]
        return values

    def first(self, doc: Any) -> tuple[bool, Any]:
        """(True, the first value) or (False, None) when the path reaches nothing."""
        found = self.find(doc)
        return (True, found[0]) if found else (False, None)


def parse(text: str) -> JSONPath:
    """Parse a column's ``jsonPath`` (with or without the ``{...}`` of a template)."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    body = body.removeprefix("$")
    parser = _Parser(body, text)
    return JSONPath(text, tuple(parser.steps()))


class _Parser:
    def __init__(self, body: str, text: str) -> None:
        self.s, self.i, self.text = body, 0, text

    def fail(self, why: str) -> JSONPathError:
        return JSONPathError(f'jsonPath "{self.text}": {why} at offset {self.i}')

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def steps(self) -> Iterator[Step]:
        while self.i < len(self.s):
            if self.peek(2) == "..":
                self.i += 2
                yield _recursive(self.field())
            elif self.peek() == ".":
                self.i += 1
                if self.peek() == "*":
                    self.i += 1
                    yield _children
                elif self.peek() in ("", "["):
                    continue  # "." alone is the current object; ".[0]" indexes it
                else:
                    yield _field(self.field())
            elif self.peek() == "[":
                yield self.bracket()
            else:
                raise self.fail(f'unexpected "{self.peek()}"')

    def field(self) -> str:
        out = []
        while self.i < len(self.s) and self.s[self.i] not in _TERMINATORS:
            if self.s[self.i] == "\\" and self.i + 1 < len(self.s):
                self.i += 1
            out.append(self.s[self.i])
            self.i += 1
        if not out:
            raise self.fail("a field name is expected")
        return "".join(out)

    def bracket(self) -> Step:
        end = self._closing(self.i)
        inner, self.i = self.s[self.i + 1:end].strip(), end + 1
        if inner == "*":
            return _children
        if inner.startswith("?(") and inner.endswith(")"):
            return self.filter(inner[2:-1].strip())
        parts = _split_union(inner)
        if all(p[:1] in ("'", '"') and p[-1:] == p[:1] and len(p) >= 2 for p in parts):
            return _fields([p[1:-1] for p in parts])
        if len(parts) == 1 and ":" in parts[0]:
            return _slice(*self._slice_bounds(parts[0]))
        try:
            return _indexes([int(p) for p in parts])
        except ValueError:
            raise self.fail(f'"[{inner}]" is not an index, a slice, a quoted name, * or a filter') from None

    def _closing(self, start: int) -> int:
        depth, quote = 0, ""
        for j in range(start, len(self.s)):
            c = self.s[j]
            if quote:
                quote = "" if c == quote else quote
            elif c in ("'", '"'):
                quote = c
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    return j
        raise self.fail('no closing "]"')

    def _slice_bounds(self, text: str) -> tuple[int | None, int | None, int | None]:
        bounds = [b.strip() for b in text.split(":")]
        if len(bounds) > 3:
            raise self.fail(f'"{text}" is not a slice')
        try:
            values = [int(b) if b else None for b in bounds] + [None] * (3 - len(bounds))
        except ValueError:
            raise self.fail(f'"{text}" is not a slice') from None
        return values[0], values[1], values[2]

    def filter(self, expr: str) -> Step:
        for op in _OPERATORS:
            left, sep, right = _split_outside_quotes(expr, op)
            if sep:
                return _compare(self.operand(left.strip()), op, self.operand(right.strip()))
        return _has(self.operand(expr))

    def operand(self, text: str) -> Callable[[Any], list[Any]]:
        if text.startswith("@"):
            sub = parse(text[1:]) if len(text) > 1 else JSONPath(text, ())
            return sub.find
        if len(text) >= 2 and text[0] in ("'", '"') and text[-1] == text[0]:
            literal: Any = text[1:-1]
        elif text in ("true", "false"):
            literal = text == "true"
        elif _NUMBER.match(text):
            literal = float(text) if any(c in text for c in ".eE") else int(text)
        else:
            raise self.fail(f'"{text}" in a filter is neither @.path nor a literal')
        return lambda _item: [literal]


def _split_union(inner: str) -> list[str]:
    parts, current, quote = [], "", ""
    for c in inner:
        if quote:
            quote = "" if c == quote else quote
        elif c in ("'", '"'):
            quote = c
        elif c == ",":
            parts.append(current.strip())
            current = ""
            continue
        current += c
    parts.append(current.strip())
    return parts


def _split_outside_quotes(expr: str, op: str) -> tuple[str, str, str]:
    quote = ""
    for j, c in enumerate(expr):
        if quote:
            quote = "" if c == quote else quote
        elif c in ("'", '"'):
            quote = c
        elif expr.startswith(op, j):
            # "<" must not match the start of "<=", nor "=" the end of "!=".
            longer = any(expr.startswith(o, j) and len(o) > len(op) for o in _OPERATORS)
            if not longer and not (op in ("<", ">") and j > 0 and expr[j - 1] in "<>!="):
                return expr[:j], op, expr[j + len(op):]
    return expr, "", ""


def _field(name: str) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict) and name in value:
            yield value[name]
    return step


def _fields(names: list[str]) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            yield from (value[n] for n in names if n in value)
    return step


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, list):
        yield from value


def _recursive(name: str) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            if name in value:
                yield value[name]
            for child in value.values():
                yield from step(child)
        elif isinstance(value, list):
            for child in value:
                yield from step(child)
    return step


def _indexes(indexes: list[int]) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list):
            # Out of range is "missing", which columns allow.
            yield from (value[i] for i in indexes if -len(value) <= i < len(value))
    return step


def _slice(start: int | None, stop: int | None, stride: int | None) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list):
            yield from value[start:stop:stride]
    return step


def _has(operand: Callable[[Any], list[Any]]) -> Step:
    def step(value: Any) -> Iterator[Any]:
        yield from (item for item in _items(value) if operand(item))
    return step


def _compare(left: Callable[[Any], list[Any]], op: str, right: Callable[[Any], list[Any]]) -> Step:
    def step(value: Any) -> Iterator[Any]:
        for item in _items(value):
            lefts, rights = left(item), right(item)
            if lefts and rights and _holds(lefts[0], op, rights[0]):
                yield item
    return step


def _items(value: Any) -> list[Any]:
    # client-go filters arrays only; anything else is an error, which leaves the cell empty.
    return value if isinstance(value, list) else []


def _holds(a: Any, op: str, b: Any) -> bool:
    # client-go refuses to compare values of different kinds (an error: the cell stays empty), and
    # orders only numbers and strings.
    if not _same_kind(a, b):
        return False
    if op in ("==", "!="):
        return bool(a == b) == (op == "==")
    if not isinstance(a, (int, float, str)) or isinstance(a, bool):
        return False
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _same_kind(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or type(a) is type(b)
