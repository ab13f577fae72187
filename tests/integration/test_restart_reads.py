"""A restarted operator resumes its runs from one paged listing of their ConfigMaps, not from
three GETs per run, and the runs go on as if read one by one (bench/live_runs.py measures it
at 10,000 runs; docs/performance.md, "10,000 live runs")."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from clusterkit import Cluster, Runs
from operator_process import OperatorProcess
from runkit import run, send_signal, workflow
from scrape import Samples, value

from baton.api.labels import PART, RUN_UID
from baton.store.kube import core_path, open_connection
from baton.store.startup import ConfigMapIndex

HOLDS = 4
NAPS = 2


def wait_resumed(operator: OperatorProcess, timeout: float = 120.0) -> Samples:
    """The restarted operator's metrics once every run has a loop and every sleep is armed."""
    deadline = time.monotonic() + timeout
    while True:
        samples = operator.metrics()
        if (
            value(samples, "baton_runs_active") == HOLDS + NAPS
            and value(samples, "baton_timers_pending") == NAPS
        ):
            return samples
        assert time.monotonic() < deadline, f"not resumed:\n{operator.log_tail(40)}"
        time.sleep(0.2)


def test_a_restarted_operator_reads_its_runs_configmaps_in_one_listing(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow("hold", [{"name": "hold", "waitForSignal": {"name": "go"}}]),
            workflow("nap", [{"name": "nap", "sleep": {"duration": "1h"}}]),
            *(run(f"hold-{i}", "hold") for i in range(HOLDS)),
            *(run(f"nap-{i}", "nap") for i in range(NAPS)),
        ]
    )
    for i in range(HOLDS):
        runs.wait(f"hold-{i}", step="hold", step_phase="Waiting", timeout=90)
    wakes = {}
    for i in range(NAPS):
        wakes[i] = runs.wait(f"nap-{i}", step="nap", step_phase="Waiting", timeout=90)["steps"][
            "nap"
        ]["wakeAt"]

    operator.stop()
    operator.start()
    samples = wait_resumed(operator)

    reads = {"resource": "configmaps"}
    assert value(samples, "baton_api_reads_total", verb="list", **reads) == 1
    assert value(samples, "baton_api_reads_total", verb="get", **reads) == 0
    # Resumed from the listing, the runs go on: each signal is appended to a history chunk
    # fenced on the resourceVersion the listing gave, with no conflict.
    for i in range(HOLDS):
        send_signal(runs.cluster, runs.namespace, f"hold-{i}", "go")
    for i in range(HOLDS):
        assert runs.wait(f"hold-{i}", timeout=90)["phase"] == "Succeeded"
    for i in range(NAPS):
        status = runs.status(f"nap-{i}")
        assert status["steps"]["nap"]["phase"] == "Waiting"
        assert status["steps"]["nap"]["wakeAt"] == wakes[i]
    assert value(operator.metrics(), "baton_api_conflicts_total") == 0


def test_the_listing_answers_each_run_once_and_each_name_once(
    crds: Cluster, namespace: str
) -> None:
    """What the listing may answer: a run's first claim only, each name once, and nothing once
    the window closes; everything else is read from the API server as it is now."""

    async def scenario() -> None:
        connection = await open_connection(str(crds.kubeconfig))
        kube = connection.kube
        try:
            labels = {PART: "history", RUN_UID: "uid-1"}
            body = {"metadata": {"name": "r-history-0", "labels": labels}, "data": {"k": "v"}}
            await kube.create(core_path("configmaps", namespace), body)
            index = ConfigMapIndex(kube)
            assert not index.claim("uid-1")  # closed until opened
            index.open([namespace])
            assert index.claim("uid-1")
            assert not index.claim("uid-1")  # a later loop of the run reads from the API
            listed = await index.read(namespace, "r-history-0")
            assert listed is not None
            assert listed["data"] == {"k": "v"}
            assert "managedFields" not in listed["metadata"]
            assert await index.read(namespace, "r-history-1") is None  # absent, not asked
            assert kube.reads == Counter({"list configmaps": 1})
            # Changed since the listing: a second read of the name is the API server's.
            await kube.patch(
                core_path("configmaps", namespace, "r-history-0"), {"data": {"k": "w"}}
            )
            again = await index.read(namespace, "r-history-0")
            assert again is not None
            assert again["data"] == {"k": "w"}
            assert kube.reads["get configmaps"] == 1
            index.expire()
            assert await index.read(namespace, "r-history-1") is None
            assert kube.reads["get configmaps"] == 2
            assert not index.claim("uid-2")
        finally:
            await connection.close()

    asyncio.run(scenario())
