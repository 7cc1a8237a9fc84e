"""operator.lingeringCaptures becomes DEBUGCAP_OPERATOR_LINGERING_CAPTURES, which the operator
reads back; unset (the default), the variable is absent and the cap is the concurrency."""

from __future__ import annotations

from pathlib import Path

import pytest

from debugcap.operator.config import DebugcapConfig

from .test_chart_namespaces import helm, operator_env, render  # noqa: F401  (helm: a fixture)

pytestmark = pytest.mark.slow


def test_lingering_captures_reach_the_operator(helm: Path) -> None:  # noqa: F811
    assert "DEBUGCAP_OPERATOR_LINGERING_CAPTURES" not in operator_env(render(helm))
    env = operator_env(render(helm, "--set", "operator.lingeringCaptures=6"))
    assert env["DEBUGCAP_OPERATOR_LINGERING_CAPTURES"] == "6"
    assert DebugcapConfig.from_env(env).lingering_captures == 6
