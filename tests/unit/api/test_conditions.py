"""Conditions in the Kubernetes convention: set by type, dated by their transitions, and a run's
outcome told by Succeeded and Completed."""

from __future__ import annotations

import pytest

from baton.api.conditions import ConditionStatus, condition_is, set_condition
from baton.api.run import RunPhase, run_outcome

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"


def test_a_new_condition_is_appended_with_the_time_and_generation() -> None:
    conditions = set_condition([], "Ready", True, "Compiled", "ok", now=T0, observed_generation=3)
    assert conditions == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Compiled",
            "message": "ok",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        }
    ]


def test_a_condition_whose_status_stays_keeps_its_transition_time() -> None:
    before = set_condition([], "Ready", True, "Compiled", "ok", now=T0)
    after = set_condition(before, "Ready", True, "Compiled", "still ok", now=T1)
    assert after[0]["lastTransitionTime"] == T0
    assert after[0]["message"] == "still ok"


def test_a_condition_whose_status_changes_is_dated_now() -> None:
    before = set_condition([], "Ready", True, "Compiled", "ok", now=T0)
    after = set_condition(before, "Ready", False, "InvalidSpec", "bad", now=T1)
    assert after[0]["status"] == "False"
    assert after[0]["lastTransitionTime"] == T1


def test_setting_a_condition_replaces_its_type_in_place_and_keeps_the_others() -> None:
    conditions = set_condition([], "A", True, "R", "", now=T0)
    conditions = set_condition(conditions, "B", True, "R", "", now=T0)
    conditions = set_condition(conditions, "A", False, "R", "", now=T1)
    assert [(c["type"], c["status"]) for c in conditions] == [("A", "False"), ("B", "True")]


def test_duplicates_of_a_type_collapse_into_one() -> None:
    twice = [
        {"type": "Invalid", "status": "True", "lastTransitionTime": T0},
        {"type": "Invalid", "status": "True", "lastTransitionTime": T0},
    ]
    assert len(set_condition(twice, "Invalid", True, "R", "m", now=T1)) == 1


def test_condition_is_true_only_for_status_true() -> None:
    conditions = set_condition([], "Ready", ConditionStatus.UNKNOWN, "R", "", now=T0)
    assert not condition_is(conditions, "Ready")
    assert condition_is(set_condition(conditions, "Ready", True, "R", "", now=T0), "Ready")


def outcome(phase: RunPhase, error: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in run_outcome([], phase, error, now=T0)}


@pytest.mark.parametrize("phase", [RunPhase.PENDING, RunPhase.RUNNING, RunPhase.COMPENSATING])
def test_a_run_not_ended_is_neither_succeeded_nor_completed(phase: RunPhase) -> None:
    conditions = outcome(phase)
    assert conditions["Succeeded"]["status"] == "Unknown"
    assert conditions["Completed"]["status"] == "False"


def test_a_run_that_succeeded_is_succeeded_and_completed() -> None:
    conditions = outcome(RunPhase.SUCCEEDED)
    assert conditions["Succeeded"]["status"] == "True"
    assert conditions["Completed"]["status"] == "True"


@pytest.mark.parametrize(
    "phase",
    [
        RunPhase.FAILED,
        RunPhase.COMPENSATED,
        RunPhase.COMPENSATION_FAILED,
        RunPhase.CANCELLED,
        RunPhase.TIMED_OUT,
    ],
)
def test_a_run_that_ended_otherwise_is_completed_not_succeeded_with_the_phase_as_reason(
    phase: RunPhase,
) -> None:
    conditions = outcome(phase)
    assert conditions["Succeeded"]["status"] == "False"
    assert conditions["Succeeded"]["reason"] == phase.value
    assert conditions["Completed"]["status"] == "True"


def test_the_outcome_message_names_the_error_and_its_step() -> None:
    error = {"type": "HttpError", "step": "pay", "message": "502 Bad Gateway"}
    message = outcome(RunPhase.FAILED, error)["Succeeded"]["message"]
    assert message == "the run ended Failed: HttpError in step pay: 502 Bad Gateway"


def test_the_outcome_keeps_the_engines_conditions() -> None:
    engine = [{"type": "SignalHandlerFailed", "status": "True", "lastTransitionTime": T0}]
    types = [c["type"] for c in run_outcome(engine, RunPhase.RUNNING, None, now=T1)]
    assert types == ["SignalHandlerFailed", "Succeeded", "Completed"]


def test_a_run_that_continued_as_new_succeeded_and_names_its_successor() -> None:
    found = {
        c["type"]: c
        for c in run_outcome([], RunPhase.CONTINUED_AS_NEW, None, now=T0, continued_as="next-1")
    }
    succeeded, completed = found["Succeeded"], found["Completed"]
    assert (succeeded["status"], succeeded["reason"]) == ("True", "ContinuedAsNew")
    assert succeeded["message"] == "the run continued as next-1"
    assert completed["status"] == "True"
