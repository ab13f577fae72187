"""A forEach over more items than a run could hold before (2,000) runs in one WorkflowRun: it
finishes, every item's call is made once, and the run's status stays a bounded summary, also
when the operator restarts in the middle and resumes the run from its history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clusterkit import Runs, started_operator
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import http, run, wait_until, workflow

STATUS_LIMIT = 256 * 1024


def fan_out(recorder: Recorder, name: str) -> dict[str, object]:
    step = {"name": "call", "http": http(f"{recorder.url}/item/${{{{ item }}}}")}
    each = {"name": "each", "forEach": {"items": "input", "concurrency": 100, "step": step}}
    return workflow(name, [each])


def status_bytes(status: dict[str, object]) -> int:
    return len(json.dumps(status, separators=(",", ":")).encode())


@pytest.mark.timeout(1500)
def test_a_for_each_of_3000_http_items_finishes_with_a_bounded_status(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply([fan_out(recorder, "fan"), run("fan-1", "fan", list(range(3000)))])
    status = runs.wait("fan-1", timeout=1400)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    assert status["summary"] is True
    counts = status["steps"]["each"]["itemCounts"]
    assert counts["total"] == counts["succeeded"] == 3000
    assert len(status["steps"]) <= 1 + counts["listed"]
    assert status_bytes(status) <= STATUS_LIMIT
    called = [c.path for c in recorder.effects.values() if c.path.startswith("/item/")]
    assert sorted(called) == sorted(f"/item/{i}" for i in range(3000))  # each once


@pytest.mark.timeout(1200)
def test_a_summarized_run_resumes_from_its_history_after_an_operator_restart(
    runs: Runs, recorder: Recorder, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # One slow item holds the run open: the operator is killed while the run is running,
    # however fast the other 799 go.
    recorder.script("/item/700", Reply(body={"slow": True}, delay=10))
    runs.apply([fan_out(recorder, "fan"), run("fan-2", "fan", list(range(800)))])

    def summarized_while_running() -> bool:
        status = runs.status("fan-2")
        assert status.get("phase") in (None, "Pending", "Running"), status.get("phase")
        return bool(status.get("summary")) and status["phase"] == "Running"

    # A status interval of 1 s: the summary is written while the run is running (with the
    # default, the first timed status write may come after the slow item).
    with started_operator(
        runs.cluster, runs.namespace, tmp_path, request, "--status-interval", "1"
    ) as operator:
        wait_until("the run's status is a summary", summarized_while_running, timeout=600)
        operator.kill()
        operator.start()
        status = runs.wait("fan-2", timeout=1100)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    assert status["steps"]["each"]["itemCounts"]["succeeded"] == 800
    called = [c.path for c in recorder.effects.values() if c.path.startswith("/item/")]
    assert sorted(called) == sorted(f"/item/{i}" for i in range(800))  # each once
