"""Fail when a module of debugcap/ is over 500 lines or a function over 80 (run by `make lint`).

Large files and long functions are where the design stops being easy to see: a module over 500
lines holds more than one concern, a function over 80 more than one step. A documented hot loop
may be longer: mark its ``def`` line with ``# long: <why>``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
ROOT = Path(__file__).resolve().parents[1] / "debugcap"


def problems(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        rel = path.relative_to(root.parent)
        if len(lines) > MAX_FILE_LINES:
            found.append(f"{rel}: {len(lines)} lines (at most {MAX_FILE_LINES}); split it by concern")
        for node in ast.walk(ast.parse(text, str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and "# long:" not in lines[node.lineno - 1]:
                found.append(f"{rel}:{node.lineno}: {node.name}() is {length} lines (at most "
                             f"{MAX_FUNCTION_LINES}); split it, or mark a hot loop with '# long: <why>'")
    return found


def main() -> int:
    found = problems(ROOT)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
