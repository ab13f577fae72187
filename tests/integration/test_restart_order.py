"""A restarted operator resumes its runs most urgent first (baton.handlers.resumes), and a run
whose loop ended is not resumed again by a late watch event from before its last status write
(docs/performance.md, "10,000 live runs")."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from clusterkit import HISTORY_KEY, Cluster, Runs, started_operator
from operator_process import OperatorProcess
from runkit import run, send_signal, workflow
from scrape import value

from baton.api.labels import SHARD
from baton.handlers.runs import Shell
from baton.settings import OperatorSettings
from baton.store.kube import open_connection, path_of

FAR = 4
IDLE = 3
_RESUMED = re.compile(r"resumed [^/\s]+/(\S+) \(")


def resumed_order(operator: OperatorProcess, start: int, expected: int) -> list[str]:
    """The runs the operator's `start`-th process resumed, in order, once it resumed them all."""
    deadline = time.monotonic() + 120
    while True:
        text = operator.log_path.read_text(errors="replace")
        since = text.split(f"===== start {start} =====", 1)[-1]
        names = _RESUMED.findall(since)
        if len(names) >= expected:
            return names
        assert time.monotonic() < deadline, f"resumed {names}:\n{operator.log_tail(40)}"
        time.sleep(0.2)


def test_a_restarted_operator_resumes_signalled_and_due_runs_before_runs_waiting_far_ahead(
    runs: Runs, crds: Cluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # kopf lists runs by name: the far sleepers (a-*) and the signal waits (b-*) come first,
    # the runs with something to do last (x-, y-, z-).
    runs.apply(
        [
            workflow("far", [{"name": "nap", "sleep": {"duration": "2h"}}]),
            workflow("soon", [{"name": "nap", "sleep": {"duration": "1h"}}]),
            workflow("due", [{"name": "nap", "sleep": {"duration": "3s"}}]),
            workflow("hold", [{"name": "hold", "waitForSignal": {"name": "go"}}]),
            *(run(f"a-far-{i}", "far") for i in range(FAR)),
            *(run(f"b-idle-{i}", "hold") for i in range(IDLE)),
            run("x-soon", "soon"),
            run("y-due", "due"),
            run("z-signalled", "hold"),
        ]
    )
    with started_operator(
        crds, namespace, tmp_path, request, "--resumes-in-flight", "1"
    ) as operator:
        for name in [*(f"a-far-{i}" for i in range(FAR)), "x-soon", "y-due"]:
            runs.wait(name, step="nap", step_phase="Waiting", timeout=90)
        for name in [*(f"b-idle-{i}" for i in range(IDLE)), "z-signalled"]:
            runs.wait(name, step="hold", step_phase="Waiting", timeout=90)
        operator.stop()
        send_signal(runs.cluster, runs.namespace, "z-signalled", "go")
        time.sleep(3.5)  # y-due's sleep is due while the operator is down
        operator.start()
        order = resumed_order(operator, start=2, expected=FAR + IDLE + 3)
        assert runs.wait("z-signalled", timeout=90)["phase"] == "Succeeded"
        assert runs.wait("y-due", timeout=90)["phase"] == "Succeeded"

    # The first run kopf handed over may have found the queue empty and room to resume: the
    # order holds for every run after it.
    rest = order[1:]
    urgent = [n for n in rest if n in {"z-signalled", "y-due"}]
    assert rest[: len(urgent)] == urgent, order
    timers = [n for n in rest if n.startswith(("x-", "a-"))]
    if "x-soon" in timers:
        assert timers[0] == "x-soon", order  # the soonest timer first
    idle = [n for n in rest if n.startswith("b-")]
    assert rest[-len(idle) :] == idle, order  # those waiting only for the user, last


def test_a_late_event_from_before_a_run_ended_does_not_resume_it(
    runs: Runs, crds: Cluster, namespace: str
) -> None:
    runs.apply(
        [
            workflow("hold", [{"name": "hold", "waitForSignal": {"name": "go"}}]),
            run("once", "hold"),
        ]
    )

    async def scenario() -> None:
        connection = await open_connection(str(crds.kubeconfig))
        kube = connection.kube
        settings = OperatorSettings(
            namespaces=(namespace,), history_key=HISTORY_KEY.encode(), metrics_port=0
        )
        shell = Shell(kube, settings, executors={})
        registry = shell.registry
        path = path_of("workflowruns", namespace, "once")

        async def read() -> dict[str, object]:
            body = await kube.get(path)
            assert body is not None
            return body

        async def until(check: object, what: str) -> None:
            deadline = time.monotonic() + 60
            while not callable(check) or not await check():
                assert time.monotonic() < deadline, what
                await asyncio.sleep(0.1)

        try:
            body = await read()
            uid = body["metadata"]["uid"]  # type: ignore[index]
            registry.observe("ADDED", body)

            async def waiting() -> bool:
                status = (await read()).get("status") or {}
                steps = status.get("steps") or {}  # type: ignore[union-attr]
                return bool(steps.get("hold", {}).get("phase") == "Waiting")

            await until(waiting, "the run never waited")
            before_end = await read()  # what kopf may still hand over after the loop ends
            await asyncio.to_thread(send_signal, runs.cluster, namespace, "once", "go")
            registry.observe("MODIFIED", await read())

            async def loop_ended() -> bool:
                return uid not in registry.loops

            await until(loop_ended, "the run's loop never ended")
            registry.observe("MODIFIED", before_end)
            assert uid not in registry.loops, "an older event of the run resumed it again"
            final = await read()
            assert (final.get("status") or {}).get("phase") == "Succeeded"  # type: ignore[union-attr]
            registry.observe("MODIFIED", final)
            assert uid not in registry.loops
            # Its final status seen, nothing of the ended loop is held any more.
            assert uid not in registry._ended
        finally:
            await registry.stop()
            await connection.close()

    asyncio.run(scenario())


def test_a_resumed_run_with_nothing_to_fold_does_not_write_its_status(
    runs: Runs, crds: Cluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    runs.apply(
        [
            workflow("far", [{"name": "nap", "sleep": {"duration": "2h"}}]),
            *(run(f"a-far-{i}", "far") for i in range(FAR)),
        ]
    )
    with started_operator(crds, namespace, tmp_path, request) as operator:
        for i in range(FAR):
            runs.wait(f"a-far-{i}", step="nap", step_phase="Waiting", timeout=90)
        operator.stop()
        operator.start()
        resumed_order(operator, start=2, expected=FAR)
        time.sleep(2)  # what a resumed loop writes, it writes before it waits
        writes = operator.metrics()
    assert (
        value(writes, "baton_api_writes_total", verb="patch", resource="workflowruns/status") == 0
    )
    assert value(writes, "baton_timers_pending") == FAR


def test_listed_runs_resume_before_kopf_hands_them_over_and_deleted_ones_are_forgotten(
    runs: Runs, crds: Cluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    runs.apply(
        [
            workflow("hold", [{"name": "hold", "waitForSignal": {"name": "go"}}]),
            run("kept", "hold"),
            run("gone", "hold"),
        ]
    )
    with started_operator(crds, namespace, tmp_path, request):
        for name in ("kept", "gone"):
            runs.wait(name, step="hold", step_phase="Waiting", timeout=90)

    async def scenario() -> None:
        # This registry is fed by no watch: what it resumes, it found in its own listing.
        connection = await open_connection(str(crds.kubeconfig))
        kube = connection.kube
        settings = OperatorSettings(
            namespaces=(namespace,), history_key=HISTORY_KEY.encode(), metrics_port=0
        )
        shell = Shell(kube, settings, executors={})
        registry = shell.registry
        try:
            uids = {}
            for name in ("kept", "gone"):
                body = await kube.get(path_of("workflowruns", namespace, name))
                assert body is not None
                uids[name] = body["metadata"]["uid"]
            shell.open_index()
            deadline = time.monotonic() + 60
            while set(uids.values()) - registry.loops.keys():
                assert time.monotonic() < deadline, "the listed runs were not resumed"
                await asyncio.sleep(0.1)
            # Deleted before kopf's own listing, which will not hand it over then.
            await kube.delete(path_of("workflowruns", namespace, "gone"))
            registry.observe("ADDED", await kube.get(path_of("workflowruns", namespace, "kept")))  # type: ignore[arg-type]
            while uids["gone"] in registry.latest:
                assert time.monotonic() < deadline, "a run kopf never handed over was kept"
                await asyncio.sleep(0.2)
            assert uids["gone"] not in registry.loops
            assert uids["kept"] in registry.loops
        finally:
            await registry.stop()
            await connection.close()

    asyncio.run(scenario())


def test_an_operator_of_every_namespace_lists_the_runs_of_all_of_them_to_resume(
    runs: Runs, crds: Cluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A shard of this test's own keeps the cluster-wide registry to these runs.
    shard = f"s-{namespace}"[:63].rstrip("-")
    held = run("held", "hold")
    held["metadata"]["labels"] = {SHARD: shard}
    runs.apply([workflow("hold", [{"name": "hold", "waitForSignal": {"name": "go"}}]), held])
    with started_operator(crds, namespace, tmp_path, request, "--shard", shard):
        runs.wait("held", step="hold", step_phase="Waiting", timeout=90)

    async def scenario() -> None:
        # Fed by no watch, and watching no namespace by name: what it resumes, it listed.
        connection = await open_connection(str(crds.kubeconfig))
        settings = OperatorSettings(shard=shard, history_key=HISTORY_KEY.encode(), metrics_port=0)
        shell = Shell(connection.kube, settings, executors={})
        try:
            body = await connection.kube.get(path_of("workflowruns", namespace, "held"))
            assert body is not None
            shell.open_index()
            deadline = time.monotonic() + 60
            while body["metadata"]["uid"] not in shell.registry.loops:
                assert time.monotonic() < deadline, "the listed run was not resumed"
                await asyncio.sleep(0.1)
        finally:
            await shell.registry.stop()
            await connection.close()

    asyncio.run(scenario())
