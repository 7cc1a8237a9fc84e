"""A ttl is bounded, in the operator's parser and in every CRD that carries one.

Cases: ``spec.ttl: 3000000d`` (which once overflowed the expiry date and left the capture Running,
retried forever) is refused naming ``spec.ttl`` and the bound; the bound itself (3660d, also
written ``3659d23h60m``) is accepted and a second more refused; the DebugCapture's ``spec.ttl`` and
the ``captureTemplate.spec.ttl`` of DebugSchedule and DebugTrigger carry the same schema, whose
CEL rule holds the operator's own bound (the real API server's verdict is in
tests/e2e/test_storage_safety.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from debugcap.errors import ConfigError
from debugcap.operator.config import MAX_DURATION_SECONDS
from debugcap.operator.requests import parse_spec

CRDS = Path(__file__).resolve().parents[3] / "crds"


def _spec(ttl: str) -> dict[str, Any]:
    return {"target": {"pod": "api-1"}, "ttl": ttl}


@pytest.mark.parametrize("ttl", ["3000000d", "3661d", "3660d1s", "999999999999999999999d"])
def test_a_ttl_past_the_bound_is_refused_naming_the_field_and_the_bound(ttl: str) -> None:
    with pytest.raises(ConfigError, match=rf'spec\.ttl: "{ttl}" is longer than ten years'):
        parse_spec(_spec(ttl))


@pytest.mark.parametrize("ttl", ["3660d", "3659d23h60m"])
def test_the_bound_itself_is_accepted(ttl: str) -> None:
    assert parse_spec(_spec(ttl)).ttl == timedelta(days=3660) == timedelta(seconds=MAX_DURATION_SECONDS)


def _ttl_schemas() -> dict[str, dict[str, Any]]:
    def spec_of(name: str) -> dict[str, Any]:
        crd = yaml.safe_load((CRDS / f"debugcap.io_{name}.yaml").read_text())
        return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]  # type: ignore[no-any-return]

    capture_template = "captureTemplate"
    return {
        "DebugCapture spec.ttl": spec_of("debugcaptures")["properties"]["ttl"],
        "DebugSchedule captureTemplate.spec.ttl":
            spec_of("debugschedules")["properties"][capture_template]["properties"]["spec"]["properties"]["ttl"],
        "DebugTrigger captureTemplate.spec.ttl":
            spec_of("debugtriggers")["properties"][capture_template]["properties"]["spec"]["properties"]["ttl"],
    }


def test_every_crd_ttl_carries_the_operators_bound() -> None:
    schemas = _ttl_schemas()
    first = schemas["DebugCapture spec.ttl"]
    for where, schema in schemas.items():
        rules = [r["rule"] for r in schema.get("x-kubernetes-validations", [])]
        bound = [int(n) for rule in rules for n in re.findall(r"<= (\d+)", rule)]
        assert bound == [MAX_DURATION_SECONDS], (where, rules)
        assert any("3660d" in r["message"] for r in schema["x-kubernetes-validations"]), where
        assert {k: v for k, v in schema.items() if k != "description"} == \
            {k: v for k, v in first.items() if k != "description"}, where
