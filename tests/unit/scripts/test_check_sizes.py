"""scripts/check_sizes.py, run by `make lint`: modules over 500 lines and functions over 80 fail,
unless a function's def line documents it as a hot loop (``# long: why``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check_sizes.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sizes", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(name: str, body_lines: int, mark: str = "") -> str:
    return f"def {name}() -> None:{mark}\n" + "    x = 1\n" * body_lines


def test_long_module_and_long_function_are_named(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("x = 1\n" * 501)
    (tmp_path / "long.py").write_text(_function("steps", 80))
    (tmp_path / "ok.py").write_text(_function("short", 79) + "x = 1\n" * 400)
    found = _script().problems(tmp_path)
    assert len(found) == 2
    assert any("big.py: 501 lines" in line for line in found)
    assert any("long.py:1: steps() is 81 lines" in line for line in found)


def test_a_documented_hot_loop_may_be_longer(tmp_path: Path) -> None:
    (tmp_path / "hot.py").write_text(_function("walk", 120, "  # long: walks every field"))
    assert _script().problems(tmp_path) == []


def test_the_tree_itself_passes() -> None:
    assert _script().problems(SCRIPT.parents[1] / "debugcap") == []
