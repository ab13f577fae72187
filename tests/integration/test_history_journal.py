"""The namespace's history journal (baton.store.journal): several runs' batches in one write,
moved into each run's chunks when it ends or waits; what a crash between the two leaves is read
once; a journal Baton did not create is never written; a forged entry fails its run."""

from __future__ import annotations

import json

import pytest
from clusterkit import Runs
from crashkit import LivesFactory, check_replay
from kubernetes import client
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import history, http, run, send_signal, wait_until, workflow
from scrape import value

from baton.api.labels import PART
from baton.store.journal import JOURNAL, NAME, parse_key

pytestmark = pytest.mark.timeout(300)

RUNS = 20
STEPS = 5


def core(runs: Runs) -> client.CoreV1Api:
    return client.CoreV1Api(runs.cluster.api_client)


def chain(recorder: Recorder, name: str, steps: int) -> dict[str, object]:
    return workflow(
        name, [{"name": f"s{i}", "http": http(f"{recorder.url}/{name}/s{i}")} for i in range(steps)]
    )


def configmap_writes(operator: OperatorProcess) -> float:
    samples = operator.metrics()
    return sum(
        value(samples, "baton_api_writes_total", verb=verb, resource="configmaps")
        for verb in ("post", "patch")
    )


def journal_data(runs: Runs) -> dict[str, str]:
    found = core(runs).read_namespaced_config_map(NAME, runs.namespace)
    return dict(found.data or {})


def warm(runs: Runs, recorder: Recorder) -> None:
    """A run of quick steps, whose middle batches make the operator create the journal."""
    runs.apply([chain(recorder, "warm", 3), run("warm-1", "warm")])
    assert runs.wait("warm-1")["phase"] == "Succeeded"
    journal = core(runs).read_namespaced_config_map(NAME, runs.namespace)
    assert journal.metadata.labels[PART] == JOURNAL


def test_concurrent_runs_share_history_writes_through_the_journal(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    spec = chain(recorder, "chain", STEPS)
    runs.apply([spec])
    before = configmap_writes(operator)
    runs.apply([run(f"chain-{i}", "chain") for i in range(RUNS)])
    batches = 0
    for i in range(RUNS):
        status = runs.wait(f"chain-{i}", timeout=180)
        assert status["phase"] == "Succeeded", status
        batches += status["history"]["batches"]
    writes = configmap_writes(operator) - before
    # One write per batch without the journal; with it, batches of runs in flight share.
    assert writes < batches, (writes, batches)
    for i in range(RUNS):
        check_replay(runs, spec, f"chain-{i}")
        assert len(recorder.calls_to(f"/chain/s{STEPS - 1}")) == RUNS
    # Finished runs' batches are all in their chunks: the journal lets go of them.
    wait_until("the journal emptied", lambda: not [k for k in journal_data(runs) if parse_key(k)])


def test_a_journal_baton_did_not_create_is_never_written(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    planted = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=NAME, labels={PART: JOURNAL}), data={"mine": "x"}
    )
    core(runs).create_namespaced_config_map(runs.namespace, planted)
    spec = chain(recorder, "planted", 3)
    runs.apply([spec, run("planted-1", "planted")])
    status = runs.wait("planted-1")
    assert status["phase"] == "Succeeded", status
    assert journal_data(runs) == {"mine": "x"}
    check_replay(runs, spec, "planted-1")
    assert "not created by Baton" in operator.log_tail(400)


def test_a_forged_journal_entry_fails_its_run_instead_of_approving(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    warm(runs, recorder)
    steps = [
        {"name": "first", "http": http(f"{recorder.url}/first")},
        {"name": "approval", "waitForSignal": {"name": "approve"}},
        {"name": "pay", "http": http(f"{recorder.url}/pay")},
    ]
    runs.apply([workflow("approval", steps), run("forged-1", "approval")])
    status = runs.wait("forged-1", step="approval", step_phase="Waiting")
    operator.stop()
    uid = runs.get("forged-1")["metadata"]["uid"]
    number = status["history"]["batches"]
    forged = {"at": 1.0, "type": "SignalReceived", "index": 0, "name": "approve", "payload": {}}
    text = json.dumps(forged) + "\n" + json.dumps({"mac": "0" * 64})
    core(runs).patch_namespaced_config_map(
        NAME, runs.namespace, {"data": {f"forged-1.{uid}.{number:012d}": text}}
    )
    operator.start()
    status = runs.wait("forged-1", timeout=90)
    assert status["phase"] == "Failed"
    assert status["error"]["type"] == "HistoryTampered", status["error"]
    assert recorder.calls_to("/pay") == []


@pytest.mark.parametrize("point", ["after-journal-write:3", "after-journal-compaction"])
def test_a_crash_around_the_journal_loses_and_repeats_nothing(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory, point: str
) -> None:
    """Dying once batches are in the journal only (the status behind them), or once they are
    in the run's chunk and still in the journal: every step called once, the run ends, its
    history whole and verified."""
    lives = make_lives("--status-interval", "3600")
    spec = chain(recorder, "crashy", 6)
    runs.apply([spec, *(run(f"crashy-{i}", "crashy") for i in range(3))])
    lives.die_at(point)
    lives.start()
    for i in range(3):
        status = runs.wait(f"crashy-{i}", timeout=120)
        assert status["phase"] == "Succeeded", status
        uid = runs.get(f"crashy-{i}")["metadata"]["uid"]
        for step in range(6):
            calls = recorder.calls_to(f"/crashy/s{step}")
            assert len({c.key for c in calls if c.key and c.key.startswith(uid)}) == 1
        check_replay(runs, spec, f"crashy-{i}")
        printed = history(runs.cluster, runs.namespace, f"crashy-{i}")
        assert [e["type"] for e in printed].count("ActivityCompleted") == 6
    wait_until("the journal emptied", lambda: not [k for k in journal_data(runs) if parse_key(k)])


def test_a_deleted_runs_journal_entries_are_dropped(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    warm(runs, recorder)
    runs.apply([workflow("gate", [{"name": "gate", "waitForSignal": {"name": "go"}}])])
    runs.apply([run("gone-1", "gate")])
    runs.wait("gone-1", step="gate", step_phase="Waiting")
    uid = runs.get("gone-1")["metadata"]["uid"]
    operator.stop()
    # What a crash leaves: an entry of the run in the journal (copied from its chunk).
    chunk = core(runs).read_namespaced_config_map("gone-1-history-0", runs.namespace)
    text = chunk.data["000000000000"]
    core(runs).patch_namespaced_config_map(
        NAME, runs.namespace, {"data": {f"gone-1.{uid}.000000000000": text}}
    )
    runs.cluster.kubectl("delete", "workflowrun", "gone-1", "-n", runs.namespace)
    operator.start()
    runs.apply([run("other-1", "gate")])  # the journal is read when a run uses it
    runs.wait("other-1", step="gate", step_phase="Waiting")
    send_signal(runs.cluster, runs.namespace, "other-1", "go")
    assert runs.wait("other-1")["phase"] == "Succeeded"
    wait_until(
        "the deleted run's entry dropped",
        lambda: not [k for k in journal_data(runs) if uid in k],
        timeout=60,
    )
