"""docs/plugin.md documents every exit code the plugin has, with its number and name."""

from __future__ import annotations

import re
from pathlib import Path

from debugcap.kubectl_plugin.options import ExitCode

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugin.md"


def test_every_exit_code_is_in_the_docs_table() -> None:
    table = DOC.read_text().split("## Exit codes", 1)[1]
    rows = dict(re.findall(r"^\| (\d+) \| `(\w+)` \|", table, flags=re.MULTILINE))
    assert rows == {str(int(code)): code.name for code in ExitCode}
