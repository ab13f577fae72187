"""The operator's pool runtime against an in-memory API: tasks wait for ready workers, slots
are handed out fairly, the Deployment is created and scaled from the backlog, the status is
written, and `scaling: external` never writes replicas."""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any

from baton import metrics
from baton.handlers.pools import Pools
from baton.pools import objects
from baton.store.kube import ApiError
from baton.store.ref import RunRef

NS = "shop"


class FakeKube:
    """Objects by path; create, merge-patch (one level deep is enough here) and get."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {TOKEN_SECRET: token_secret()}
        self.patches: list[tuple[str, Any]] = []
        self.refusals = 0

    async def get(self, path: str, **_: str) -> dict[str, Any] | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        name = meta.get("name") or f"{meta['generateName']}{len(self.objects)}"
        self.objects[f"{path}/{name}"] = copy.deepcopy(body)
        return copy.deepcopy(body)

    async def patch(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.patches.append((path, body))
        target = self.objects.setdefault(path.removesuffix("/status"), {})
        for key, value in body.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = copy.deepcopy(value)
        return copy.deepcopy(target)


DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/payments"
TOKEN_SECRET = f"/api/v1/namespaces/{NS}/secrets/payments-worker-token"


def token_secret() -> dict[str, Any]:
    """The pool's token Secret, as the reconciliation of the pool created it."""
    owner = {"kind": "WorkerPool", "name": "payments", "uid": "p-1"}
    metadata = {"name": "payments-worker-token", "namespace": NS, "ownerReferences": [owner]}
    return {"metadata": metadata, "data": {"current": "dG9rZW4="}}


def pool(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "payments", "namespace": NS, "uid": "p-1", "generation": 1},
        "spec": {"image": "w:1", "tasksPerReplica": 2, "maxReplicas": 3, **spec},
    }


def ready(pools: Pools, count: int) -> None:
    deployment = {
        "metadata": {
            "name": "payments",
            "namespace": NS,
            "labels": objects.labels("payments"),
            "ownerReferences": [{"kind": "WorkerPool", "name": "payments", "uid": "p-1"}],
        },
        "spec": {"replicas": count},
        "status": {"replicas": count, "readyReplicas": count},
    }
    pools.observe_deployment("MODIFIED", deployment)


def run(n: int) -> RunRef:
    return RunRef(f"run-{n}", NS, f"uid-{n}")


def test_tasks_wait_for_ready_workers_and_the_deployment_scales_from_the_backlog() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool())
        waiting = [
            asyncio.create_task(pools.acquire(run(n % 2), "payments", f"k{n}")) for n in range(5)
        ]
        await asyncio.sleep(0)
        assert not any(t.done() for t in waiting)  # no ready worker yet
        runtime = pools._pools[(NS, "payments")]
        await pools.reconcile(runtime)
        assert kube.objects[DEPLOYMENT]["spec"]["replicas"] == 3  # ceil(5 / 2)
        assert kube.objects[f"/api/v1/namespaces/{NS}/services/payments"]
        status = kube.objects[f"/apis/baton.dev/v1alpha1/namespaces/{NS}/workerpools/payments"]
        assert status["status"]["backlog"] == 5
        assert status["status"]["conditions"][0]["reason"] == "NoReadyWorkers"

        ready(pools, 1)  # one worker: two slots, one per run
        await asyncio.sleep(0)
        done = [t for t in waiting if t.done()]
        assert len(done) == 2
        pools.release(run(0), "payments", "k0")
        await asyncio.sleep(0)
        assert len([t for t in waiting if t.done()]) == 3
        for task in waiting:
            task.cancel()

    asyncio.run(scenario())


def test_external_scaling_never_writes_replicas() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool(scaling="external", minReplicas=2))
        waiting = asyncio.create_task(pools.acquire(run(0), "payments", "k0"))
        await asyncio.sleep(0)
        runtime = pools._pools[(NS, "payments")]
        await pools.reconcile(runtime)
        assert kube.objects[DEPLOYMENT]["spec"]["replicas"] == 2  # set once, at creation
        kube.objects[DEPLOYMENT]["spec"]["replicas"] = 7  # the HPA's choice
        runtime.deployment = copy.deepcopy(kube.objects[DEPLOYMENT])
        await pools.reconcile(runtime)
        assert kube.objects[DEPLOYMENT]["spec"]["replicas"] == 7
        assert not any(
            path == DEPLOYMENT and "replicas" in body.get("spec", {}) for path, body in kube.patches
        )
        waiting.cancel()

    asyncio.run(scenario())


def test_a_task_for_a_pool_not_applied_yet_waits_for_it_and_the_run_is_told() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        waiting = asyncio.create_task(pools.acquire(run(0), "payments", "k0"))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        [event] = [o for path, o in kube.objects.items() if "/events/" in path]
        assert event["reason"] == "WorkerPoolNotFound"
        assert event["involvedObject"]["kind"] == "WorkflowRun"
        assert event["involvedObject"]["name"] == "run-0"
        pools.observe_pool("ADDED", pool())  # applied now
        await pools.reconcile(pools._pools[(NS, "payments")])  # its token is read
        ready(pools, 1)
        assert (await waiting)["metadata"]["name"] == "payments"

    asyncio.run(scenario())


def test_metrics_sample_the_queue_and_count_each_scale_change() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool(minReplicas=0))
        runtime = pools._pools[(NS, "payments")]
        await pools.reconcile(runtime)  # created at zero: not a scale change
        ups = {"namespace": NS, "pool": "payments", "direction": "up"}
        before = metrics.REGISTRY.get_sample_value("baton_pool_scale_changes_total", ups) or 0
        waiting = [
            asyncio.create_task(pools.acquire(run(0), "payments", f"k{n}")) for n in range(3)
        ]
        await asyncio.sleep(0)
        await pools.reconcile(runtime)
        ready(pools, 1)
        await asyncio.sleep(0)
        after = metrics.REGISTRY.get_sample_value("baton_pool_scale_changes_total", ups)
        assert after == before + 1  # 0 -> 2 workers
        [sample] = pools.samples()
        assert (sample.backlog, sample.in_flight, sample.desired_replicas) == (1, 2, 2)
        pools.is_active = lambda: False
        assert pools.samples() == []  # a standby reports no pool
        for task in waiting:
            task.cancel()

    asyncio.run(scenario())


def test_slots_are_shared_between_trees_of_runs_not_between_child_runs() -> None:
    async def scenario() -> None:
        pools = Pools(FakeKube(), clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool())
        fan_out = [RunRef(f"child-{n}", NS, f"child-{n}", root_uid="parent") for n in range(2)]
        alone = run(9)
        keys = [(fan_out[0], "c0-a"), (fan_out[0], "c0-b"), (fan_out[1], "c1-a"), (alone, "b")]
        waiting = {
            key: asyncio.create_task(pools.acquire(ref, "payments", key)) for ref, key in keys
        }
        await asyncio.sleep(0)  # all queued: no worker yet
        ready(pools, 1)  # two slots: one for the parent's tree, one for the other run
        await asyncio.sleep(0)
        assert {key for key, task in waiting.items() if task.done()} == {"c0-a", "b"}
        for task in waiting.values():
            task.cancel()

    asyncio.run(scenario())


def test_a_pool_of_another_shard_is_not_used_and_the_run_is_told_why() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        body = pool()
        body["metadata"]["labels"] = {"baton.dev/shard": "b"}
        kube.objects[f"/apis/baton.dev/v1alpha1/namespaces/{NS}/workerpools/payments"] = body
        pools = Pools(kube, clock=lambda: 1000.0, shard="a")  # type: ignore[arg-type]
        waiting = asyncio.create_task(pools.acquire(run(0), "payments", "k0"))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        [event] = [o for path, o in kube.objects.items() if "/events/" in path]
        assert "not in the run's shard a" in event["message"]
        assert "baton.dev/shard=a" in event["message"]
        waiting.cancel()

    asyncio.run(scenario())


SERVICE = f"/api/v1/namespaces/{NS}/services/payments"


def test_a_service_named_like_the_pool_that_it_did_not_create_is_left_alone_and_reported() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        theirs = {
            "metadata": {"name": "payments", "namespace": NS, "uid": "s-1"},
            "spec": {"selector": {"app": "payments-api"}},
        }
        kube.objects[SERVICE] = copy.deepcopy(theirs)
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool(minReplicas=1))
        waiting = asyncio.create_task(pools.acquire(run(0), "payments", "k0"))
        runtime = pools._pools[(NS, "payments")]
        for _ in range(2):
            await pools.reconcile(runtime)
        assert kube.objects[SERVICE] == theirs
        assert DEPLOYMENT not in kube.objects  # nothing is created beside it either
        assert not any(path == SERVICE for path, _ in kube.patches)
        status = kube.objects[f"/apis/baton.dev/v1alpha1/namespaces/{NS}/workerpools/payments"]
        [ready_condition] = status["status"]["conditions"]
        assert (ready_condition["status"], ready_condition["reason"]) == ("False", "NameConflict")
        assert f"Service {NS}/payments exists" in ready_condition["message"]
        [event] = [o for path, o in kube.objects.items() if "/events/" in path]  # once
        assert (event["type"], event["reason"]) == ("Warning", "NameConflict")
        assert "rename the WorkerPool" in event["message"]
        ready(pools, 1)  # even a Deployment of the pool's name does not make it dispatch
        await asyncio.sleep(0)
        assert not waiting.done()

        del kube.objects[SERVICE]  # the name is free: the pool applies its own objects
        await pools.reconcile(runtime)
        assert kube.objects[SERVICE]["spec"]["selector"] == {objects.POOL: "payments"}
        assert kube.objects[DEPLOYMENT]["metadata"]["ownerReferences"][0]["uid"] == "p-1"
        waiting.cancel()

    asyncio.run(scenario())


def test_a_deployment_of_another_owner_is_neither_patched_nor_scaled() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        theirs = {
            "metadata": {
                "name": "payments",
                "namespace": NS,
                "uid": "d-1",
                "labels": objects.labels("payments"),
                "ownerReferences": [{"kind": "WorkerPool", "name": "payments", "uid": "old"}],
            },
            "spec": {"replicas": 1},
        }
        kube.objects[DEPLOYMENT] = copy.deepcopy(theirs)
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool(minReplicas=2))
        pools.observe_deployment("ADDED", copy.deepcopy(theirs))
        runtime = pools._pools[(NS, "payments")]
        await pools.reconcile(runtime)
        assert kube.objects[DEPLOYMENT] == theirs
        assert SERVICE not in kube.objects
        assert runtime.blocked is not None
        assert "WorkerPool payments" in runtime.blocked.message  # who owns it, by kind and name

    asyncio.run(scenario())


def test_a_pool_naming_a_service_account_the_policy_refuses_gets_no_deployment() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        pools = Pools(kube, clock=lambda: 1000.0, service_accounts=("workers-*",))  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool(serviceAccountName="namespace-admin", minReplicas=1))
        runtime = pools._pools[(NS, "payments")]
        await pools.reconcile(runtime)
        assert DEPLOYMENT not in kube.objects
        assert SERVICE not in kube.objects
        status = kube.objects[f"/apis/baton.dev/v1alpha1/namespaces/{NS}/workerpools/payments"]
        [ready_condition] = status["status"]["conditions"]
        assert (ready_condition["status"], ready_condition["reason"]) == ("False", "PolicyDenied")
        message = ready_condition["message"]
        assert "spec.serviceAccountName: ServiceAccount 'namespace-admin' is not allowed" in message
        assert "operator.podPolicy.serviceAccounts" in message
        [event] = [o for path, o in kube.objects.items() if "/events/" in path]
        assert (event["type"], event["reason"]) == ("Warning", "PolicyDenied")

        allowed = pool(serviceAccountName="workers-payments", minReplicas=1)
        allowed["metadata"]["generation"] = 2
        pools.observe_pool("MODIFIED", allowed)
        await pools.reconcile(runtime)
        template = kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]
        assert template["serviceAccountName"] == "workers-payments"

    asyncio.run(scenario())


def test_a_pool_gets_a_token_secret_it_owns_and_tasks_carry_its_current_token() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        del kube.objects[TOKEN_SECRET]
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool())
        await pools.reconcile(pools._pools[(NS, "payments")])
        created = kube.objects[TOKEN_SECRET]
        assert created["metadata"]["ownerReferences"][0]["uid"] == "p-1"
        token = base64.b64decode(created["data"]["current"]).decode()
        assert len(token) >= 32
        assert pools.token(run(0), "payments") == token

    asyncio.run(scenario())


def test_a_foreign_secret_holding_the_token_name_blocks_the_pool() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        kube.objects[TOKEN_SECRET] = {"metadata": {"name": "payments-worker-token"}, "data": {}}
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool())
        runtime = pools._pools[(NS, "payments")]
        await pools.reconcile(runtime)
        assert runtime.blocked is not None
        assert runtime.blocked.reason == "NameConflict"
        assert "Secret shop/payments-worker-token" in runtime.blocked.message
        assert pools.token(run(0), "payments") is None
        assert DEPLOYMENT not in kube.objects

    asyncio.run(scenario())


def test_a_deployment_the_api_server_refuses_blocks_the_pool_once_until_its_spec_changes() -> None:
    class RefusingKube(FakeKube):
        async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            if "/deployments" in path:
                self.refusals += 1
                raise ApiError(422, "Invalid", "spec.template.spec.affinity: Invalid value")
            return await super().create(path, body)

    async def scenario() -> None:
        kube = RefusingKube()
        pools = Pools(kube, clock=lambda: 1000.0)  # type: ignore[arg-type]
        pools.observe_pool("ADDED", pool())
        runtime = pools._pools[(NS, "payments")]
        for _ in range(3):
            await pools.reconcile(runtime)
        assert runtime.blocked is not None
        assert runtime.blocked.reason == "InvalidTemplate"
        assert "affinity: Invalid value" in runtime.blocked.message
        assert kube.refusals == 1  # not asked again every reconciliation
        events = [o for path, o in kube.objects.items() if "/events/" in path]
        assert [e["reason"] for e in events] == ["InvalidTemplate"]
        changed = pool()
        changed["metadata"]["generation"] = 2
        pools.observe_pool("MODIFIED", changed)
        await pools.reconcile(runtime)
        assert kube.refusals == 2  # a new spec is tried

    asyncio.run(scenario())
