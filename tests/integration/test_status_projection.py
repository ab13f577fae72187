"""The status is a projection of the history: written at once when something a user watches
changes (the phase, a wait beginning), otherwise at most once per `--status-interval` seconds;
the history append stays the commit point, so a crash with the status several batches behind
loses and repeats nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterkit import Cluster, Runs, started_operator
from crashkit import Lives, check_replay, journal_batches
from kubernetes import client
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import http, run, workflow
from scrape import value

from baton.api.labels import PART, RUN_UID
from baton.store.history import HISTORY, decode_chunk

pytestmark = pytest.mark.timeout(300)

NEVER = ("--status-interval", "3600")
"""An interval no test outlives: every status write seen is one written at once."""


def chain(recorder: Recorder, name: str, steps: int) -> dict[str, object]:
    return workflow(
        name, [{"name": f"s{i}", "http": http(f"{recorder.url}/s{i}")} for i in range(steps)]
    )


def status_writes(operator: OperatorProcess) -> float:
    return value(
        operator.metrics(), "baton_api_writes_total", verb="patch", resource="workflowruns/status"
    )


def history_batches(runs: Runs, name: str) -> int:
    """How many batches the run's history holds."""
    uid = runs.get(name)["metadata"]["uid"]
    chunks = (
        client.CoreV1Api(runs.cluster.api_client)
        .list_namespaced_config_map(
            runs.namespace, label_selector=f"{RUN_UID}={uid},{PART}={HISTORY}"
        )
        .items
    )
    numbers = {number for chunk in chunks for number, _ in decode_chunk(chunk.data)}
    return len(numbers | {number for number, _ in journal_batches(runs, uid)})


def test_a_chain_of_quick_steps_writes_its_status_when_the_phase_changes_not_per_step(
    tmp_path: Path, request: pytest.FixtureRequest, runs: Runs, recorder: Recorder
) -> None:
    spec = chain(recorder, "chain", 10)
    with started_operator(runs.cluster, runs.namespace, tmp_path, request, *NEVER) as operator:
        before = status_writes(operator)
        runs.apply([spec, run("chain-1", "chain")])
        status = runs.wait("chain-1")
        assert status["phase"] == "Succeeded", status
        # Running when it started, Succeeded when it ended: two, for eleven batches.
        assert status_writes(operator) - before == 2
    assert status["history"]["batches"] == 11
    assert all(step["phase"] == "Succeeded" for step in status["steps"].values())
    check_replay(runs, spec, "chain-1")


def test_a_wait_beginning_is_written_at_once(
    tmp_path: Path, request: pytest.FixtureRequest, runs: Runs, recorder: Recorder
) -> None:
    steps = [
        {"name": "first", "http": http(f"{recorder.url}/first")},
        {"name": "nap", "sleep": {"duration": "1h"}},
    ]
    runs.apply([workflow("napper", steps), run("napper-1", "napper")])
    with started_operator(runs.cluster, runs.namespace, tmp_path, request, *NEVER):
        status = runs.wait("napper-1", step="nap", step_phase="Waiting")
    assert status["steps"]["first"]["phase"] == "Succeeded"
    assert status["phase"] == "Running"


def test_a_status_behind_its_history_is_written_within_the_interval(
    tmp_path: Path, request: pytest.FixtureRequest, runs: Runs, recorder: Recorder
) -> None:
    recorder.script("/slow", Reply(body={"ok": True}, delay=30.0))
    steps = [
        {"name": "first", "http": http(f"{recorder.url}/first")},
        {"name": "slow", "http": http(f"{recorder.url}/slow")},
    ]
    runs.apply([workflow("slowpoke", steps), run("slowpoke-1", "slowpoke")])
    with started_operator(
        runs.cluster, runs.namespace, tmp_path, request, "--status-interval", "1"
    ):
        # Nothing a user watches changed when `first` ended and `slow` began: the status shows
        # it once the interval passed, while `slow` still waits for its answer.
        status = runs.wait("slowpoke-1", step="first", step_phase="Succeeded", timeout=25)
        assert status["steps"]["slow"]["phase"] == "Running", status
        assert runs.wait("slowpoke-1")["phase"] == "Succeeded"


def test_a_crash_with_the_status_batches_behind_repeats_and_loses_no_step(
    tmp_path: Path, runs: Runs, recorder: Recorder, crds: Cluster
) -> None:
    spec = chain(recorder, "behind", 6)
    runs.apply([spec, run("behind-1", "behind")])
    process = OperatorProcess(
        crds.env,
        tmp_path / "operator.log",
        "--namespace",
        runs.namespace,
        "--no-kube-events",
        *NEVER,
        verbose=False,
    )
    lives = Lives(process)
    try:
        # The start, then s0..s2 done: four batches committed, s3 handed over, and the status
        # still shows the start alone.
        lives.die_at("after-perform:4")
        shown = runs.status("behind-1")
        assert shown["history"]["batches"] == 1, shown
        assert history_batches(runs, "behind-1") == 4
        lives.start()
        status = runs.wait("behind-1")
    finally:
        process.stop()
    assert status["phase"] == "Succeeded", status
    uid = runs.get("behind-1")["metadata"]["uid"]
    for i in range(6):
        assert [call.key for call in recorder.calls_to(f"/s{i}")][:1] == [f"{uid}/s{i}/1"]
        assert {call.key for call in recorder.calls_to(f"/s{i}")} == {f"{uid}/s{i}/1"}
        assert [call.key for call in recorder.effects_on(f"/s{i}")] == [f"{uid}/s{i}/1"]
    check_replay(runs, spec, "behind-1")
