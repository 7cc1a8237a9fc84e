"""A DebugCapture's conditions: kstatus's Ready, Reconciling and Stalled follow its phase.

Cases: each phase gives the table of conditions.py (PartiallyFailed is Ready, Failed is Stalled,
Complete only once the run ended); every condition is a metav1.Condition of the capture's
generation; rewriting a condition with the same status keeps its lastTransitionTime, a new
status moves it; status_fields keeps conditions it does not set (SpecChangeIgnored, Healthy); an
edited spec makes SpecChangeIgnored and Stalled of the new generation, Ready staying of the old.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from debugcap.operator import conditions

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _statuses(items: list[dict[str, object]]) -> dict[object, object]:
    return {c["type"]: c["status"] for c in items}


@pytest.mark.parametrize(("phase", "expected"), [
    ("Pending", {"Ready": "False", "Reconciling": "True", "Stalled": "False"}),
    ("Running", {"Ready": "False", "Reconciling": "True", "Stalled": "False"}),
    ("Completed", {"Ready": "True", "Reconciling": "False", "Stalled": "False", "Complete": "True"}),
    ("PartiallyFailed", {"Ready": "True", "Reconciling": "False", "Stalled": "False", "Complete": "True"}),
    ("Failed", {"Ready": "False", "Reconciling": "False", "Stalled": "True", "Complete": "False"}),
])
def test_each_phase_has_its_kstatus_conditions(phase: str, expected: dict[str, str]) -> None:
    made = conditions.for_phase(phase, "why", generation=3, now=T0)
    assert _statuses(made) == expected
    for c in made:
        assert set(c) == {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
        assert (c["reason"], c["message"], c["observedGeneration"]) == (phase, "why", 3)
        assert c["lastTransitionTime"] == "2026-12-01T10:00:00Z"


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    running = conditions.status_fields("Running", "capturing", previous=[], generation=1, now=T0)["conditions"]
    again = conditions.status_fields("Running", "still capturing", previous=running, generation=1, now=T1)
    done = conditions.status_fields("Completed", "done", previous=again["conditions"], generation=1, now=T1)
    ready = conditions.find(again["conditions"], "Ready")
    assert ready is not None and ready["lastTransitionTime"] == "2026-12-01T10:00:00Z"
    assert ready["message"] == "still capturing"  # the message is new, the transition is not
    finished = {c["type"]: c for c in done["conditions"]}
    assert finished["Ready"]["lastTransitionTime"] == "2026-12-01T10:05:00Z"  # False -> True
    assert finished["Stalled"]["lastTransitionTime"] == "2026-12-01T10:00:00Z"  # False all along
    assert done["phase"] == "Completed" and done["message"] == "done"


def test_writing_a_phase_keeps_conditions_it_does_not_set_and_adds_extra_ones() -> None:
    other = conditions.condition("SpecChangeIgnored", True, "RunsOnce", "edited", generation=2, now=T0)
    healthy = conditions.condition("Healthy", False, "UnhealthyPods", "1 of 2", generation=1, now=T1)
    fields = conditions.status_fields("Completed", "done", previous=[other], generation=1, now=T1, extra=[healthy])
    types = [c["type"] for c in fields["conditions"]]
    assert sorted(types) == ["Complete", "Healthy", "Ready", "Reconciling", "SpecChangeIgnored", "Stalled"]
    assert len(types) == len(set(types))  # the CRD's list-map: one condition per type


def test_an_edited_spec_stalls_the_capture_at_the_new_generation_and_ready_stays_at_the_old() -> None:
    done = conditions.for_phase("Completed", "done", generation=1, now=T0)
    edited = {c["type"]: c for c in conditions.spec_change_ignored(done, "spec changed", generation=2, now=T1)}
    assert (edited["Stalled"]["status"], edited["Stalled"]["reason"]) == ("True", "SpecChangeIgnored")
    assert edited["Stalled"]["observedGeneration"] == edited["SpecChangeIgnored"]["observedGeneration"] == 2
    # `kubectl wait --for=condition=Ready` compares this with metadata.generation: not met for 2.
    assert (edited["Ready"]["status"], edited["Ready"]["observedGeneration"]) == ("True", 1)


def test_unknown_status_and_a_missing_generation() -> None:
    c = conditions.condition("Healthy", None, "NotAnalysed", "x" * 2000, generation=None, now=T0)
    assert c["status"] == "Unknown" and "observedGeneration" not in c
    assert len(c["message"]) == conditions.MESSAGE_CHARS
