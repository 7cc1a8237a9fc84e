"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture
def pure_python_yaml_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every pure-Python ``yaml.SafeLoader`` built while the test runs (issue 17: the hot paths read
    YAML with libyaml's loader; the pure-Python one cost a sweep milliseconds per pod)."""
    assert yaml.__with_libyaml__, "the PyYAML wheel in use has no libyaml"
    built: list[object] = []
    real_init = yaml.SafeLoader.__init__

    def counting(self, stream) -> None:  # type: ignore[no-untyped-def]
        built.append(self)
        real_init(self, stream)

    monkeypatch.setattr(yaml.SafeLoader, "__init__", counting)
    return built
