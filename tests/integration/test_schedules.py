"""Schedules on the real control plane: runs started at their times through operator crashes,
one per nominal time, and an overlap policy at work."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from clusterkit import KubectlError, Runs
from crashkit import LivesFactory
from kubernetes import client

from baton.api.labels import SCHEDULE, SCHEDULED_TIME
from baton.cli.main import main


def workflow(name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": steps},
    }


def schedule(name: str, workflow_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {"workflowRef": {"name": workflow_name}, **spec},
    }


def api(runs: Runs) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(runs.cluster.api_client)


def schedule_of(runs: Runs, name: str) -> dict[str, Any]:
    found: dict[str, Any] = api(runs).get_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "schedules", name
    )
    return found


def runs_of(runs: Runs, name: str) -> list[dict[str, Any]]:
    listed = api(runs).list_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns", label_selector=f"{SCHEDULE}={name}"
    )
    return sorted(listed["items"], key=lambda r: r["metadata"]["name"])


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} within {timeout}s"
        time.sleep(0.2)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_schedule_killed_at_its_due_time_starts_exactly_one_run_per_nominal_time(
    runs: Runs, make_lives: LivesFactory
) -> None:
    runs.apply(
        [
            workflow("stamp", [{"name": "stamp", "set": {"at": "${{ run.scheduledTime }}"}}]),
            schedule(
                "tick",
                "stamp",
                intervals=[{"every": "3s"}],
                overlap="allowAll",
                successfulRunsHistoryLimit=50,
            ),
        ]
    )
    lives = make_lives()
    # Dies right after creating the first due run, before the status says so; the next life
    # repeats that pass (its create finds the run: 409) and dies before writing the status
    # again; the third carries on.
    assert lives.die_at("after-schedule-start") == "after-schedule-start"
    assert lives.die_at("before-schedule-status") == "before-schedule-status"
    lives.start()

    def counted(least: int) -> bool:
        status = schedule_of(runs, "tick").get("status") or {}
        return int(status.get("actions") or 0) >= least

    wait_for(lambda: counted(5), "5 runs counted in the status")
    lives.process.stop()
    found = runs_of(runs, "tick")
    status = schedule_of(runs, "tick")["status"]
    nominal = [at(r["metadata"]["annotations"][SCHEDULED_TIME]) for r in found]
    # One run per nominal time, with no time between the first and the last left out.
    assert len(set(nominal)) == len(nominal)
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(nominal)}
    assert gaps == {3.0}
    # The status counts each start once, though the first was carried out in three lives (a
    # run after the cursor was made by a pass the stop cut short: the next life counts it).
    recorded = [n for n in nominal if n <= at(status["cursor"])]
    assert status["actions"] == len(recorded)
    first = found[0]["metadata"]["name"]
    started = [a for a in status["recent"] if a["action"] == "Started" and a["run"] == first]
    assert len(started) == 1
    # The run reads its nominal time in scope.
    done = runs.wait(first)
    assert done["phase"] == "Succeeded"
    assert done["vars"]["at"] == found[0]["metadata"]["annotations"][SCHEDULED_TIME]


def test_skip_starts_nothing_while_the_previous_run_is_still_going(
    runs: Runs, make_lives: LivesFactory
) -> None:
    runs.apply(
        [
            workflow("slow", [{"name": "nap", "sleep": {"duration": "5s"}}]),
            schedule(
                "busy",
                "slow",
                intervals=[{"every": "2s"}],
                overlap="skip",
                successfulRunsHistoryLimit=50,
            ),
        ]
    )
    lives = make_lives()
    lives.start()

    def skipped() -> bool:
        status = schedule_of(runs, "busy").get("status") or {}
        return any(a["action"] == "Skipped" for a in status.get("recent") or [])

    wait_for(skipped, "a time skipped")
    wait_for(lambda: len(runs_of(runs, "busy")) >= 2, "a second run")
    for run in runs_of(runs, "busy")[:2]:
        runs.wait(run["metadata"]["name"])
    lives.process.stop()
    found = [r for r in runs_of(runs, "busy") if (r.get("status") or {}).get("finishedAt")]
    spans = [(at(r["status"]["startedAt"]), at(r["status"]["finishedAt"])) for r in found]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"runs overlapped: {spans}"
    status = schedule_of(runs, "busy")["status"]
    reason = next(a for a in status["recent"] if a["action"] == "Skipped")["message"]
    assert reason.endswith("still going")


def test_backfill_and_trigger_from_the_cli_start_their_runs_on_a_suspended_schedule(
    runs: Runs, make_lives: LivesFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    runs.apply(
        [
            workflow("stamp", [{"name": "stamp", "set": {"at": "${{ run.scheduledTime }}"}}]),
            schedule(
                "hourly",
                "stamp",
                cron=["0 * * * *"],
                suspend=True,
                note="only what is asked for",
                successfulRunsHistoryLimit=50,
            ),
        ]
    )
    lives = make_lives()
    lives.start()
    flags = ["-n", runs.namespace, "--kubeconfig", str(runs.cluster.kubeconfig)]
    backfill = ["schedule", "backfill", "hourly", "--from", "2026-11-01T00:00:00Z"]
    assert main([*backfill, "--to", "2026-11-01T02:00:00Z", *flags]) == 0
    assert "backfill recorded (spec.backfills[0])" in capsys.readouterr().out
    assert main(["schedule", "trigger", "hourly", *flags]) == 0
    assert "trigger recorded (spec.triggers[0])" in capsys.readouterr().out
    wait_for(lambda: len(runs_of(runs, "hourly")) == 4, "3 backfilled runs and 1 triggered")
    names = [r["metadata"]["name"] for r in runs_of(runs, "hourly")]
    assert names[:3] == [
        "hourly-20261101000000",
        "hourly-20261101010000",
        "hourly-20261101020000",
    ]

    def handled() -> bool:
        status = schedule_of(runs, "hourly").get("status") or {}
        return status.get("backfillsDone") == 1 and status.get("triggersDone") == 1

    wait_for(handled, "both requests handled")
    status = schedule_of(runs, "hourly")["status"]
    assert status["actions"] == 0  # nothing scheduled ran: the schedule is suspended
    assert status["waitingFor"] == "nothing: suspended: only what is asked for"
    assert sorted(a["origin"] for a in status["recent"]) == [*["backfill"] * 3, "trigger"]
    # Requests are append-only: the API server refuses to drop one.
    with pytest.raises(KubectlError, match=r"spec\.backfills is append-only"):
        runs.cluster.kubectl(
            *("patch", "schedule", "hourly", "-n", runs.namespace, "--type", "merge"),
            *("-p", '{"spec": {"backfills": []}}'),
        )


def test_a_schedule_with_a_bad_cron_expression_is_invalid_naming_it(
    runs: Runs, make_lives: LivesFactory
) -> None:
    runs.apply(
        [
            workflow("stamp", [{"name": "stamp", "set": {"at": "${{ run.scheduledTime }}"}}]),
            schedule("broken", "stamp", cron=["*/15 * * *"]),
        ]
    )
    make_lives().start()

    def invalid() -> str | None:
        status = schedule_of(runs, "broken").get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "Invalid"]
        return found[0]["message"] if found else None

    wait_for(lambda: invalid() is not None, "the Invalid condition")
    assert invalid() == (
        "spec.cron: cron[0]: '*/15 * * *' is not a cron expression (Wrong number of fields); "
        "write five fields, minute hour day-of-month month day-of-week, like */15 * * * *"
    )
    assert runs_of(runs, "broken") == []
