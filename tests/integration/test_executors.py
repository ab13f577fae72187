"""The executors against the real control plane: Jobs run by the Job controller and finished by
kwok's simulated pods, Secrets read for HTTP headers, WorkerPools looked up for dispatch.

The run loop's kopf watch is played by `JobWatch`, which polls the Job and calls `observe` /
`observe_deleted` as the watch would. Jobs are owned by a real WorkflowRun (no operator runs
here), so the garbage collector leaves them alone until the test's namespace goes.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from recorder import Recorder, Reply
from runkit import worker_pool

from baton.api.labels import RUN_UID, WORKFLOW_SECRET
from baton.engine.commands import CancelActivity, StartActivity
from baton.engine.events import ActivityCompleted, ActivityFailed, Event
from baton.executors.http import HttpExecutor
from baton.executors.job import JobExecutor, job_name
from baton.executors.worker import WorkerExecutor
from baton.handlers.pools import Pools
from baton.settings import OperatorSettings
from baton.store.kube import Kube, batch_path
from baton.store.ref import RunRef

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SETTINGS = OperatorSettings(job_ttl_seconds=600, job_pod_annotations=("kwok.baton.dev/*",))
"""kwok.baton.dev/* steer the simulated pods; the pod policy allows no key by default."""


@pytest.fixture
def run_ref(crds: Cluster, namespace: str) -> RunRef:
    """A real WorkflowRun to own the Jobs; its Workflow does not exist and no operator runs."""
    crds.apply(
        {
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "WorkflowRun",
            "metadata": {"name": "purchase-42"},
            "spec": {"workflowRef": {"name": "absent"}},
        },
        namespace,
    )
    uid = crds.kubectl(
        "get", "workflowrun", "purchase-42", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    return RunRef(name="purchase-42", namespace=namespace, uid=uid)


class Events:
    """A `report` that collects events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def final(self) -> Event | None:
        for event in self.events:
            if event.type in ("ActivityCompleted", "ActivityFailed"):
                return event
        return None

    async def wait(self, until: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until():
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"gave up waiting; events so far: {self.events}")
            await asyncio.sleep(0.1)


class JobWatch:
    """Stands in for the run loop's Job watch: polls one Job, feeds every change to the
    executor, and reports its disappearance."""

    def __init__(self, kube: Kube, executor: JobExecutor, namespace: str, name: str) -> None:
        self.kube, self.executor, self.namespace, self.name = kube, executor, namespace, name
        self.task: asyncio.Task[None] | None = None
        self.seen = asyncio.Event()
        """Set once the Job was seen: a deletion before that would go unnoticed."""

    async def _poll(self) -> None:
        last: dict[str, Any] | None = None
        while True:
            job = await self.kube.get(batch_path(self.namespace, self.name))
            if job is None and last is not None:
                await self.executor.observe_deleted(last)
                return
            if job is not None and job["metadata"]["resourceVersion"] != (last or {}).get(
                "metadata", {}
            ).get("resourceVersion"):
                await self.executor.observe(job)
            if job is not None:
                last = job
                self.seen.set()
            await asyncio.sleep(0.2)

    def __enter__(self) -> JobWatch:
        self.task = asyncio.create_task(self._poll())
        return self

    def __exit__(self, *_: object) -> None:
        if self.task is not None:
            self.task.cancel()


def start_command(
    run: RunRef,
    kind: str,
    spec: dict[str, Any],
    *,
    key: str = "pay",
    attempt: int = 1,
    start_to_close: float | None = 120.0,
) -> StartActivity:
    return StartActivity(
        key=key,
        step=key,
        kind=kind,
        spec=spec,
        attempt=attempt,
        idempotency_key=f"{run.uid}/{key}/{attempt}",
        start_to_close=start_to_close,
        heartbeat=None,
    )


def job_spec(**pod_annotations: str) -> dict[str, Any]:
    """A JobAction whose pod kwok finishes as the annotations say."""
    annotations = {f"kwok.baton.dev/{k.replace('_', '-')}": v for k, v in pod_annotations.items()}
    return {
        "image": "registry.example/payments:1.4",
        "args": ["charge", "--amount", 1250],
        "podAnnotations": annotations,
    }


@asynccontextmanager
async def connected(cluster: Cluster) -> AsyncIterator[Kube]:
    kube = await Kube.connect(str(cluster.kubeconfig))
    try:
        yield kube
    finally:
        await kube.close()


def run_async(cluster: Cluster, scenario: Callable[[Kube], Awaitable[None]]) -> None:
    async def main() -> None:
        async with connected(cluster) as kube:
            await scenario(kube)

    asyncio.run(main())


def jobs_of(cluster: Cluster, namespace: str, run: RunRef) -> list[str]:
    names = cluster.kubectl(
        "get", "jobs", "-n", namespace, "-l", f"{RUN_UID}={run.uid}", "-o", "name"
    ).stdout.split()
    return sorted(names)


# --- Jobs --------------------------------------------------------------------------------------


def test_a_job_step_completes_with_its_termination_message(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    async def scenario(kube: Kube) -> None:
        executor = JobExecutor(kube, SETTINGS)
        events = Events()
        spec = job_spec(termination_message='{"id": "tx-42", "amount": 1250}')
        with JobWatch(kube, executor, namespace, job_name(run_ref, "pay", 1)):
            await executor.start(run_ref, start_command(run_ref, "job", spec), events)
            await events.wait(lambda: events.final() is not None)
        await executor.close()
        assert events.types() == ["ActivityStarted", "ActivityCompleted"]
        assert events.final() == ActivityCompleted(
            key="pay", attempt=1, output={"id": "tx-42", "amount": 1250}
        )

    run_async(crds, scenario)
    job = json.loads(
        crds.kubectl(
            "get", "job", job_name(run_ref, "pay", 1), "-n", namespace, "-o", "json"
        ).stdout
    )
    assert job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["ownerReferences"][0]["uid"] == run_ref.uid
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["charge", "--amount", "1250"]


def test_a_failing_job_is_job_failed_with_its_exit_code(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    async def scenario(kube: Kube) -> None:
        executor = JobExecutor(kube, SETTINGS)
        events = Events()
        with JobWatch(kube, executor, namespace, job_name(run_ref, "pay", 1)):
            await executor.start(
                run_ref, start_command(run_ref, "job", job_spec(exit_code="3")), events
            )
            await events.wait(lambda: events.final() is not None)
        await executor.close()
        final = events.final()
        assert isinstance(final, ActivityFailed)
        assert final.error["type"] == "JobFailed"
        assert final.error["details"]["exitCode"] == 3

    run_async(crds, scenario)


def test_a_start_reissued_after_a_crash_adopts_the_running_job(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    command = start_command(run_ref, "job", job_spec(duration="3s", termination_message='"paid"'))

    async def scenario(kube: Kube) -> None:
        before = JobExecutor(kube, SETTINGS)
        first = Events()
        await before.start(run_ref, command, first)
        await first.wait(lambda: first.types() == ["ActivityStarted"])
        await before.close()  # the operator dies with the Job running

        after = JobExecutor(kube, SETTINGS)
        second = Events()
        with JobWatch(kube, after, namespace, job_name(run_ref, "pay", 1)):
            await after.start(run_ref, command, second)
            await second.wait(lambda: second.final() is not None)
        await after.close()
        assert second.events[-1] == ActivityCompleted(key="pay", attempt=1, output="paid")

    run_async(crds, scenario)
    assert jobs_of(crds, namespace, run_ref) == [f"job.batch/{job_name(run_ref, 'pay', 1)}"]


def test_a_start_reissued_after_the_job_finished_reports_it_at_once(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    command = start_command(run_ref, "job", job_spec(termination_message='{"n": 1}'))

    async def scenario(kube: Kube) -> None:
        before = JobExecutor(kube, SETTINGS)
        first = Events()
        await before.start(run_ref, command, first)
        await first.wait(lambda: first.types() == ["ActivityStarted"])
        await before.close()

    run_async(crds, scenario)
    # The Job finishes while no operator runs.
    crds.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Complete",
        f"job/{job_name(run_ref, 'pay', 1)}",
        "--timeout=60s",
    )

    async def restarted(kube: Kube) -> None:
        after = JobExecutor(kube, SETTINGS)  # no watch: the adoption itself reads the state
        events = Events()
        await after.start(run_ref, command, events)
        await events.wait(lambda: events.final() is not None)
        await after.close()
        assert events.types() == ["ActivityStarted", "ActivityCompleted"]
        assert events.final() == ActivityCompleted(key="pay", attempt=1, output={"n": 1})

    run_async(crds, restarted)
    assert jobs_of(crds, namespace, run_ref) == [f"job.batch/{job_name(run_ref, 'pay', 1)}"]


def test_a_job_deleted_while_in_flight_is_lost(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    async def scenario(kube: Kube) -> None:
        executor = JobExecutor(kube, SETTINGS)
        events = Events()
        name = job_name(run_ref, "pay", 1)
        with JobWatch(kube, executor, namespace, name) as watch:
            await executor.start(
                run_ref, start_command(run_ref, "job", job_spec(duration="5m")), events
            )
            await events.wait(lambda: events.types() == ["ActivityStarted"])
            await asyncio.wait_for(watch.seen.wait(), 30)
            await kube.delete(batch_path(namespace, name))
            await events.wait(lambda: events.final() is not None)
        final = events.final()
        assert isinstance(final, ActivityFailed)
        assert final.error["type"] == "JobLost"

        # The same attempt re-issued now reports the loss rather than running the Job again.
        again = Events()
        await executor.start(run_ref, start_command(run_ref, "job", job_spec(duration="5m")), again)
        await again.wait(lambda: again.final() is not None)
        assert again.final() == final
        await executor.close()

    run_async(crds, scenario)
    assert jobs_of(crds, namespace, run_ref) == []


def test_cancel_deletes_the_job_and_reports_nothing_more(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    async def scenario(kube: Kube) -> None:
        executor = JobExecutor(kube, SETTINGS)
        events = Events()
        name = job_name(run_ref, "pay", 1)
        with JobWatch(kube, executor, namespace, name) as watch:
            await executor.start(
                run_ref, start_command(run_ref, "job", job_spec(duration="5m")), events
            )
            await events.wait(lambda: events.types() == ["ActivityStarted"])
            await asyncio.wait_for(watch.seen.wait(), 30)
            cancel = CancelActivity(key="pay", kind="job", attempt=1, idempotency_key="")
            await executor.cancel(run_ref, cancel)
            assert watch.task is not None
            await asyncio.wait_for(watch.task, 30)  # the watch saw the deletion
        assert events.types() == ["ActivityStarted"]
        await executor.close()

    run_async(crds, scenario)


# --- HTTP with a secret header -----------------------------------------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A real HTTP service on 127.0.0.1 recording every call."""
    service = Recorder().start()
    yield service
    service.stop()


def secret(
    cluster: Cluster, namespace: str, name: str, *, usable: bool = True, **data: str
) -> None:
    """A Secret; `usable` opts it in for workflow runs (the baton.dev/workflow-secret label)."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    labels = {WORKFLOW_SECRET: "true"} if usable else {}
    metadata = {"name": name, "labels": labels}
    cluster.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": encoded}, namespace
    )


def failures(events: Events) -> dict[str, dict[str, Any]]:
    return {e.key: e.error for e in events.events if isinstance(e, ActivityFailed)}


def header_calls(
    crds: Cluster, run_ref: RunRef, recorder: Recorder, refs: dict[str, dict[str, str]]
) -> Events:
    """One HTTP attempt per entry of `refs` (key → secretKeyRef of an X-Key header), to the end."""
    events = Events()

    async def scenario(kube: Kube) -> None:
        executor = HttpExecutor(kube, SETTINGS)
        for key, ref in refs.items():
            spec = {"url": f"{recorder.url}/calls", "headers": {"X-Key": {"secretKeyRef": ref}}}
            await executor.start(run_ref, start_command(run_ref, "http", spec, key=key), events)
        await events.wait(lambda: events.types().count("ActivityFailed") == len(refs))
        await executor.close()

    run_async(crds, scenario)
    return events


@pytest.fixture
def other_namespace(crds: Cluster, namespace: str) -> Iterator[str]:
    """A second namespace, holding another tenant's opted-in Secret `admin-token`."""
    other = f"{namespace[:55]}-other"
    crds.kubectl("create", "namespace", other)
    secret(crds, other, "admin-token", token="other-tenants-token")
    yield other
    crds.kubectl("delete", "namespace", other, "--wait=false")


@pytest.mark.parametrize(
    "name",
    [
        "../../{other}/secrets/admin-token",
        "%2e%2e/%2e%2e/{other}/secrets/admin-token",
        "..%2f..%2f{other}%2fsecrets%2fadmin-token",
    ],
)
def test_a_secret_name_cannot_reach_another_namespace(
    crds: Cluster, run_ref: RunRef, recorder: Recorder, other_namespace: str, name: str
) -> None:
    ref = {"name": name.format(other=other_namespace), "key": "token"}
    events = header_calls(crds, run_ref, recorder, {"a": ref})
    error = failures(events)["a"]
    assert error["type"] == "InvalidName"
    assert error["details"]["nonRetryable"] is True
    assert recorder.calls_to("/calls") == []
    assert "other-tenants-token" not in json.dumps([e.to_json() for e in events.events])


def test_a_secret_its_owner_did_not_open_to_runs_is_refused_for_good(
    crds: Cluster, namespace: str, run_ref: RunRef, recorder: Recorder
) -> None:
    secret(crds, namespace, "db-password", usable=False, token="private-db-password")
    events = header_calls(crds, run_ref, recorder, {"a": {"name": "db-password", "key": "token"}})
    error = failures(events)["a"]
    assert error["type"] == "SecretNotAllowed"
    assert error["details"]["nonRetryable"] is True
    assert "baton.dev/workflow-secret=true" in error["message"]
    assert recorder.calls_to("/calls") == []


def test_a_secret_echoed_in_a_successful_response_never_reaches_the_output(
    crds: Cluster, namespace: str, run_ref: RunRef, recorder: Recorder
) -> None:
    token = "tok-echoed-0b7d2e"
    secret(crds, namespace, "inventory", token=token)
    recorder.script("/echo", Reply(body={"youSent": {"authorization": f"Bearer {token}"}}))
    events = Events()

    async def scenario(kube: Kube) -> None:
        executor = HttpExecutor(kube, SETTINGS)
        headers = {"Authorization": {"secretKeyRef": {"name": "inventory", "key": "token"}}}
        spec = {"url": f"{recorder.url}/echo", "headers": headers}
        await executor.start(run_ref, start_command(run_ref, "http", spec), events)
        await events.wait(lambda: events.final() is not None)
        await executor.close()

    run_async(crds, scenario)
    final = events.final()
    assert isinstance(final, ActivityCompleted)
    assert final.output == {"youSent": {"authorization": "Bearer [redacted]"}}


def test_a_job_naming_a_secret_not_open_to_runs_is_refused_before_its_pod_exists(
    crds: Cluster, namespace: str, run_ref: RunRef
) -> None:
    secret(crds, namespace, "db-password", usable=False, token="private-db-password")
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-password", "key": "token"}}}]
    events = Events()

    async def scenario(kube: Kube) -> None:
        executor = JobExecutor(kube, SETTINGS)
        spec = {"image": "registry.example/exfiltrate:1", "env": env}
        await executor.start(run_ref, start_command(run_ref, "job", spec), events)
        await events.wait(lambda: events.final() is not None)
        await executor.close()

    run_async(crds, scenario)
    error = failures(events)["pay"]
    assert error["type"] == "SecretNotAllowed"
    jobs = crds.kubectl("get", "jobs", "-n", namespace, "-o", "name").stdout
    assert jobs.strip() == ""


def test_a_secret_header_is_sent_and_never_appears_in_events(
    crds: Cluster, namespace: str, run_ref: RunRef, recorder: Recorder
) -> None:
    token = "tok-5f3e9a1c-never-log-me"
    secret(crds, namespace, "inventory", token=token, broken="line\n")
    recorder.script("/reservations", Reply(status=500, body={"error": "try later"}))
    events = Events()

    async def scenario(kube: Kube) -> None:
        executor = HttpExecutor(kube, SETTINGS)
        headers = {"Authorization": {"secretKeyRef": {"name": "inventory", "key": "token"}}}
        spec = {"method": "POST", "url": f"{recorder.url}/reservations", "headers": headers}
        await executor.start(run_ref, start_command(run_ref, "http", spec, key="a"), events)
        broken = {"X-Key": {"secretKeyRef": {"name": "inventory", "key": "broken"}}}
        spec = {"url": f"{recorder.url}/reservations", "headers": broken}
        await executor.start(run_ref, start_command(run_ref, "http", spec, key="b"), events)
        missing = {"X-Key": {"secretKeyRef": {"name": "nothing", "key": "token"}}}
        spec = {"url": f"{recorder.url}/reservations", "headers": missing}
        await executor.start(run_ref, start_command(run_ref, "http", spec, key="c"), events)
        await events.wait(lambda: events.types().count("ActivityFailed") == 3)
        await executor.close()

    run_async(crds, scenario)
    (call,) = recorder.calls_to("/reservations")
    assert call.headers["Authorization"] == token
    errors = {e.key: e.error for e in events.events if isinstance(e, ActivityFailed)}
    assert errors["a"]["details"]["status"] == 500
    assert errors["b"]["type"] == "SecretUnavailable"
    assert "line break" in errors["b"]["message"]
    assert errors["c"]["type"] == "SecretUnavailable"
    assert "not found" in errors["c"]["message"]
    text = json.dumps([e.to_json() for e in events.events])
    assert token not in text
    assert "line\\n" not in text


# --- Worker pools ------------------------------------------------------------------------------


def test_a_worker_task_is_dispatched_to_its_pool(
    crds: Cluster, namespace: str, run_ref: RunRef, recorder: Recorder
) -> None:
    crds.apply(worker_pool("payments", recorder.url), namespace)
    recorder.script("/activities/refund", Reply(body={"output": {"refund": "rf-1"}}))
    recorder.script(
        "/activities/charge",
        Reply(body={"error": {"type": "CardDeclined", "message": "no", "nonRetryable": True}}),
    )
    events = Events()

    async def scenario(kube: Kube) -> None:
        http = HttpExecutor(kube, SETTINGS)
        pools = Pools(kube)
        pools.start()  # its reconciliation creates the pool's token Secret
        executor = WorkerExecutor(http, pools)
        refund = {"pool": "payments", "activity": "refund", "input": {"payment": "p-1"}}
        await executor.start(run_ref, start_command(run_ref, "worker", refund, key="r"), events)
        charge = {"pool": "payments", "activity": "charge", "input": None}
        await executor.start(run_ref, start_command(run_ref, "worker", charge, key="c"), events)
        await events.wait(
            lambda: (
                len([e for e in events.events if e.type.startswith("ActivityC")])
                + events.types().count("ActivityFailed")
                == 2
            )
        )
        await executor.close()
        await pools.close()
        await http.close()

    run_async(crds, scenario)
    outcomes = {
        e.key: e for e in events.events if isinstance(e, ActivityCompleted | ActivityFailed)
    }
    assert outcomes["r"] == ActivityCompleted(key="r", attempt=1, output={"refund": "rf-1"})
    charge_failed = outcomes["c"]
    assert isinstance(charge_failed, ActivityFailed)
    assert charge_failed.error["type"] == "CardDeclined"
    assert charge_failed.error["details"]["nonRetryable"] is True
    (call,) = recorder.calls_to("/activities/refund")
    assert call.key == f"{run_ref.uid}/r/1"
    assert call.body == {
        "input": {"payment": "p-1"},
        "idempotencyKey": f"{run_ref.uid}/r/1",
        "attempt": 1,
        "run": {"name": "purchase-42", "namespace": namespace, "uid": run_ref.uid},
    }
