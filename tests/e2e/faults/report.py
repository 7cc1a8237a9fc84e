"""The fault table at the end of a pytest session (registered from tests/e2e/conftest.py)."""

from __future__ import annotations

import pytest

from . import RECORDER, RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = RECORDER.table()
    if len(lines) <= 2:  # no fault ran in this session
        return
    terminalreporter.section("fault suite")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(every run: {RESULTS})")
