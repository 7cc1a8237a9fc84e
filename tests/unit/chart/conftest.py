from __future__ import annotations

from pathlib import Path

import pytest

from testbed import builds


@pytest.fixture(scope="session")
def helm() -> Path:
    """The testbed's helm, built from its Go module once (minutes) when the testbed has not yet."""
    builds.build(builds.component("helm"))
    return builds.binary("helm")
