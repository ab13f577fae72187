"""`baton logs`: which pod is shown, and the message when none can be (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from baton.cli import CommandError
from baton.cli.podlogs import choose_pod, pod_selector, step_pods


def pod(name: str, key: str, attempt: int, created: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": f"2026-07-01T{created}Z",
            "annotations": {"baton.dev/activity-key": key, "baton.dev/attempt": str(attempt)},
        },
        "status": {"phase": "Failed" if attempt == 1 else "Succeeded"},
    }


PODS = step_pods(
    [
        pod("r-pay-2-b", "pay", 2, "10:01:00"),
        pod("r-pay-1-a", "pay", 1, "10:00:00"),
        pod("r-fan-0", "fan[0].charge", 1, "10:02:00"),
        pod("r-fan-1", "fan[1].charge", 1, "10:03:00"),
        pod("r-ship-1", "ship", 1, "10:04:00"),
        {"metadata": {"name": "foreign", "annotations": {}}},
    ]
)
STATUS = {"steps": {"pay": {"phase": "Succeeded", "attempts": 2}, "ship": {"attempts": 1}}}


def test_the_selector_is_the_labels_of_the_runs_job_pods() -> None:
    assert pod_selector("u-1") == "baton.dev/run-uid=u-1,baton.dev/part=job"


def test_a_step_shows_its_latest_attempt() -> None:
    assert choose_pod("r", PODS, "pay", None, STATUS).name == "r-pay-2-b"


def test_an_earlier_attempt_on_request() -> None:
    assert choose_pod("r", PODS, "pay", 1, STATUS).name == "r-pay-1-a"


def test_without_a_step_the_newest_pod() -> None:
    assert choose_pod("r", PODS, None, None, STATUS).name == "r-ship-1"


def test_a_for_each_item_by_its_key() -> None:
    assert choose_pod("r", PODS, "fan[1].charge", None, STATUS).name == "r-fan-1"


def test_a_step_name_that_ran_many_times_asks_for_a_key() -> None:
    with pytest.raises(CommandError) as error:
        choose_pod("r", PODS, "charge", None, STATUS)
    assert str(error.value) == 'step "charge" ran 2 times: give one of fan[0].charge, fan[1].charge'


def test_an_attempt_without_a_pod_names_the_attempts_kept() -> None:
    with pytest.raises(CommandError) as error:
        choose_pod("r", PODS, "pay", 3, STATUS)
    assert str(error.value) == "no pod of pay, attempt 3 (pods are kept for attempts 1, 2)"


def test_a_step_whose_pods_are_gone_says_so_with_its_last_error() -> None:
    error_info = {"type": "JobFailed", "message": "exit code 2"}
    status = {"steps": {"pay": {"phase": "Failed", "attempts": 3, "error": error_info}}}
    with pytest.raises(CommandError) as error:
        choose_pod("r", [], "pay", None, status)
    assert str(error.value) == (
        'no pod of step "pay" of workflowrun "r" is left: it is not a Job step, or its Job was '
        "deleted (ttlSecondsAfterFinished, or a redrive); its last error: JobFailed: exit code 2"
    )


def test_an_unknown_step_names_the_steps_there_are() -> None:
    with pytest.raises(CommandError) as error:
        choose_pod("r", PODS, "nope", None, STATUS)
    assert str(error.value) == 'workflowrun "r" has no step "nope" (its steps so far: pay, ship)'


def test_a_run_without_job_pods() -> None:
    with pytest.raises(CommandError) as error:
        choose_pod("r", [], None, None, {})
    assert str(error.value) == ('workflowrun "r" has no Job step pods (no step has started yet)')
