"""The namespace's history journal (baton.store.journal): several runs' batches in one write,
moved into each run's chunks when it ends or waits; what a crash between the two leaves is read
once; a journal Baton did not create is never written; a forged entry fails its run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from clusterkit import Runs
from crashkit import LivesFactory, check_replay
from kubernetes import client
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import history, http, run, send_signal, wait_until, workflow
from scrape import value

from baton.api.labels import PART
from baton.engine.events import HistoryEntry, SignalReceived
from baton.store.history import HistoryConflictError, HistoryLog, HistoryPosition, read_history
from baton.store.journal import JOURNAL, NAME, REFERENCE_BYTES, Journal, parse_key
from baton.store.kube import Kube
from baton.store.ref import RunRef

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


# -- two writers on one run (a replica that has not yet noticed it lost its peering) ----------

KEY = b"k" * 32


def owner_of(runs: Runs, name: str) -> tuple[RunRef, dict[str, object]]:
    uid = runs.get(name)["metadata"]["uid"]
    owner = {"apiVersion": "baton.dev/v1alpha1", "kind": "WorkflowRun", "name": name}
    return RunRef(name, runs.namespace, uid), {**owner, "uid": uid, "controller": True}


def signal(index: int) -> list[HistoryEntry]:
    return [HistoryEntry(1.0 + index, SignalReceived(index=index, name="go", payload=index))]


class Writer:
    """One operator's view: its own client, journal and history logs."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.journal = Journal(kube, namespace, KEY, {})

    def log(self, run: RunRef, owner: dict[str, object]) -> HistoryLog:
        return HistoryLog(
            kube=self.kube,
            run=run,
            owner=owner,
            chunk_bytes=64 * 1024,
            key=KEY,
            journal=self.journal,
        )


Refs = list[tuple[RunRef, dict[str, object]]]


def with_two_writers(
    runs: Runs, body: Callable[[Writer, Writer, Refs], Awaitable[None]], *names: str
) -> None:
    """Run `body` with two writers and each named run's ref and owner (the runs exist, no
    operator drives them)."""
    runs.apply([run(name, "nowhere") for name in names])
    refs = [owner_of(runs, name) for name in names]

    async def main() -> None:
        kubes = [await Kube.connect(str(runs.cluster.kubeconfig)) for _ in range(2)]
        try:
            await body(Writer(kubes[0], runs.namespace), Writer(kubes[1], runs.namespace), refs)
        finally:
            for kube in kubes:
                await kube.close()

    asyncio.run(main())


def test_a_writer_cannot_settle_a_batch_another_writer_journaled(runs: Runs) -> None:
    async def race(a: Writer, b: Writer, refs: Refs) -> None:
        ((ref, owner),) = refs
        log_a, log_b = a.log(ref, owner), b.log(ref, owner)
        await log_a.read_tail(HistoryPosition())
        at_a = await log_a.append(HistoryPosition(), signal(0))
        _, at_b = await log_b.read_tail(HistoryPosition())
        await log_a.append(at_a, signal(1))  # journaled
        with pytest.raises(HistoryConflictError):
            await log_b.append(at_b, signal(100), settle=True)  # would go to the chunk
        tail, _ = await b.log(ref, owner).read_tail(HistoryPosition())
        assert [e.event for e in tail] == [e.event for batch in (0, 1) for e in signal(batch)]

    with_two_writers(runs, race, "twin-1")


def test_a_writer_whose_journal_view_moved_reloads_before_it_appends(runs: Runs) -> None:
    async def race(a: Writer, b: Writer, refs: Refs) -> None:
        (twin, twin_owner), (other, other_owner) = refs
        log_a, log_b = a.log(twin, twin_owner), b.log(twin, twin_owner)
        other_b = b.log(other, other_owner)
        await log_a.read_tail(HistoryPosition())
        at_a = await log_a.append(HistoryPosition(), signal(0))
        _, at_b = await log_b.read_tail(HistoryPosition())
        await other_b.read_tail(HistoryPosition())
        at_other = await other_b.append(HistoryPosition(), signal(0))
        # A commits batch 1, moves it into the chunk and drops it from the journal: nothing
        # there shows B that batch 1 is taken.
        await log_a.append(at_a, signal(1), settle=True)
        await a.journal.drain()
        with pytest.raises(HistoryConflictError):
            await other_b.append(at_other, signal(1))  # B's journal write: refused, re-read
        with pytest.raises(HistoryConflictError):
            await log_b.append(at_b, signal(100))
        tail, _ = await b.log(twin, twin_owner).read_tail(HistoryPosition())
        assert [e.event for e in tail] == [e.event for batch in (0, 1) for e in signal(batch)]

    with_two_writers(runs, race, "twin-2", "other-2")


def test_a_batch_too_large_for_the_journal_commits_there_by_reference(runs: Runs) -> None:
    async def write(a: Writer, b: Writer, refs: Refs) -> None:
        ((ref, owner),) = refs
        log_a = a.log(ref, owner)
        await log_a.read_tail(HistoryPosition())
        at = await log_a.append(HistoryPosition(), signal(0))
        many = [
            HistoryEntry(2.0, SignalReceived(index=i, name="n", payload="x" * 400))
            for i in range(1, 80)
        ]
        await log_a.append(at, many)
        data = journal_data(runs)
        (stored,) = [v for k, v in data.items() if k.startswith("large-1.")]
        assert len(stored.encode()) <= REFERENCE_BYTES
        tail, _ = await b.log(ref, owner).read_tail(HistoryPosition())
        assert [e.event for e in tail] == [e.event for e in signal(0) + many]
        assert [e.event for e in await read_history(b.kube, runs.namespace, ref.uid)] == [
            e.event for e in signal(0) + many
        ]

    with_two_writers(runs, write, "large-1")
