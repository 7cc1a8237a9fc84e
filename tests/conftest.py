"""Shared pytest setup: warnings are errors (pyproject); e2e and slow tests are marked here.

``e2e``: everything under tests/e2e (needs the local testbed).
``slow``: unit tests that build or run Go programs (the ``go tool pprof`` oracle, the profile
generator, the goapp fixture, the testbed's images). They are the reference our readers must
agree with, so they run in ``make test``; ``make test-unit-fast`` leaves them out for the inner loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

E2E = Path(__file__).parent / "e2e"
# Fixtures that compile or run Go (see each one's docstring): a test using one is slow.
SLOW_FIXTURES = frozenset({"go", "profdir", "go_top", "goapp_bin", "built", "images"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
        elif SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
