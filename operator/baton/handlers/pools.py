"""WorkerPools: their Deployments and Services, autoscaling, and the dispatch queue.

`Pools` keeps, per pool, the last WorkerPool and Deployment the watches delivered, a fair
dispatch queue (baton.pools.dispatch) and the scaling state (baton.pools.scaling). The worker
executor asks `acquire` for a slot before it sends a task and `release`s it after: a task waits
in the queue while the pool has no free capacity (ready replicas * tasksPerReplica), and the
reconciler scales the Deployment from the backlog and in-flight counts. A loop reconciles every
pool when something changed and every `interval` seconds (scale-down and idle timers).

What is written, per pool with an `image`: the Deployment and Service (created once, patched
when the pool's generation changes), `spec.replicas` when a decision changes it (never with
`scaling: external`; each change is a `Scaled` Event and a `baton_pool_scale_changes_total`
increment), and the pool's status when it differs from the last one written. `samples` gives
/metrics each pool's backlog, tasks in flight and replicas. A pool with only an `endpoint` has
no Deployment; its capacity is maxReplicas * tasksPerReplica.

What is not touched: a Deployment or Service is the pool's only while it carries the pool's
ownerReference; a foreign object of the same name is never patched nor sent tasks (the pool's
Ready condition says `NameConflict`, a Warning Event names the object and the fix). Nor is
anything applied for a pool naming a ServiceAccount the operator's pod policy refuses
(`PolicyDenied`), or whose env names a Secret runs may not use (`SecretNotAllowed`, see
baton.executors.secrets). Either way the pool gets no tasks until it is resolved.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from baton import metrics
from baton.api.labels import SHARD
from baton.api.pool import WorkerPoolSpec
from baton.executors import podpolicy
from baton.executors.attempts import ActivityError
from baton.executors.secrets import opted_in_secret, usable_secret
from baton.pools import objects, tokens
from baton.pools.dispatch import FairQueue, capacity
from baton.pools.scaling import ScalingPolicy, ScalingState, decide
from baton.store.kube import ApiError, Kube, core_path, path_of
from baton.store.objects import post_event, timestamp
from baton.store.ref import RunRef

log = logging.getLogger(__name__)

INVALID = "Invalid"
"""Reason of the Ready condition of a pool whose spec the model refuses."""

INVALID_TEMPLATE = "InvalidTemplate"
"""Reason of the Ready condition when the API server refuses the pool's Deployment (an
`affinity` or `topologySpreadConstraints` it does not accept)."""

RECONCILE_INTERVAL = 2.0
"""Seconds between two reconciliations of every pool when nothing wakes the loop."""


def deployment_path(namespace: str, name: str | None = None) -> str:
    """Path of apps/v1 Deployments."""
    return path_of("deployments", namespace, name, group="apps", version="v1")


@dataclass
class PoolRuntime:
    """What the operator holds for one pool."""

    namespace: str
    name: str
    body: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    queue: FairQueue[asyncio.Future[None]] = field(default_factory=FairQueue)
    scaling: ScalingState = field(default_factory=ScalingState)
    last_scale_time: str | None = None
    applied_generation: int | None = None
    written_status: dict[str, Any] | None = None
    blocked: objects.Blocked | None = None
    """Why the pool's Deployment and Service are not applied: a foreign object holds a name,
    or the pool names a ServiceAccount the operator's pod policy refuses."""
    refused: tuple[int | None, objects.Blocked] | None = None
    """The generation whose Deployment the API server refused, and what it said: not asked
    again until the spec changes."""
    token: str | None = None
    """The token sent to the pool's workers (its token Secret's `current`); None until the
    Secret is the pool's own, and the pool gets no tasks till then."""
    token_secret: dict[str, Any] | None = None
    """The pool's token Secret as last read or written."""

    def spec(self) -> WorkerPoolSpec | None:
        if self.body is None:
            return None
        try:
            return WorkerPoolSpec.model_validate(self.body.get("spec") or {})
        except pydantic.ValidationError:
            return None

    def invalid(self) -> objects.Blocked | None:
        """Why the spec is refused by the model where the CRD's schema let it through (the
        checks across fields: a toleration of the control plane, a mount of no volume)."""
        if self.body is None:
            return None
        try:
            WorkerPoolSpec.model_validate(self.body.get("spec") or {})
        except pydantic.ValidationError as exc:
            problems = [
                f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}".replace(
                    "spec.: ", "spec: "
                )
                for e in exc.errors(include_url=False)
            ]
            return objects.Blocked(INVALID, "; ".join(problems))
        return None


class Pools:
    """The operator's WorkerPools (see the module's docstring)."""

    def __init__(
        self,
        kube: Kube,
        *,
        interval: float = RECONCILE_INTERVAL,
        clock: Callable[[], float] = time.time,
        shard: str | None = None,
        service_accounts: tuple[str, ...] = (),
    ) -> None:
        self.kube = kube
        self.shard = shard
        self.service_accounts = service_accounts
        """ServiceAccount patterns a pool may name (OperatorSettings.pod_service_accounts)."""
        """The operator's shard: pools of another shard are not this operator's to use."""
        self.interval = interval
        self.clock = clock
        self.is_active: Callable[[], bool] = lambda: True
        """Whether this replica is the active one of its peering: a standby writes nothing."""
        self._pools: dict[tuple[str, str], PoolRuntime] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _runtime(self, namespace: str, name: str) -> PoolRuntime:
        key = (namespace, name)
        runtime = self._pools.get(key)
        if runtime is None:
            runtime = self._pools[key] = PoolRuntime(namespace, name)
        return runtime

    # -- watches --------------------------------------------------------------------------

    def observe_pool(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A WorkerPool event from the watch."""
        meta = body.get("metadata") or {}
        runtime = self._runtime(str(meta.get("namespace")), str(meta.get("name")))
        runtime.body = None if event_type == "DELETED" else dict(body)
        if runtime.body is None:
            runtime.deployment = None
            runtime.written_status = None
            runtime.applied_generation = None
            runtime.blocked = None
            runtime.token = None
            runtime.token_secret = None
        self._pump(runtime)
        self._wake.set()

    def observe_deployment(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Deployment event from the watch (Deployments labelled as a pool's)."""
        meta = body.get("metadata") or {}
        pool = (meta.get("labels") or {}).get(objects.POOL)
        if not pool or meta.get("name") != pool:
            return  # a pool's Deployment is named like it; a label alone claims nothing
        runtime = self._runtime(str(meta.get("namespace")), str(pool))
        runtime.deployment = None if event_type == "DELETED" else dict(body)
        self._pump(runtime)
        self._wake.set()

    # -- dispatch -------------------------------------------------------------------------

    async def acquire(self, run: RunRef, pool: str, key: str) -> dict[str, Any]:
        """Wait for a free slot of `pool` for task `key`; the pool's object. A pool that does
        not exist yet is waited for like one without ready workers (the run gets a Warning
        Event saying so); the step's scheduleToClose bounds the wait. Cancelling the wait leaves
        the queue."""
        runtime = self._runtime(run.namespace, pool)
        if runtime.body is None:
            found = await self.kube.get(path_of("workerpools", run.namespace, pool))
            other = None if found is None else (found["metadata"].get("labels") or {}).get(SHARD)
            if runtime.body is None and found is not None and other == self.shard:
                runtime.body = found
            if runtime.body is None:
                if found is None:
                    where = "which does not exist: apply it"
                elif self.shard is None:
                    where = (
                        f"which is in shard {other} while the run is in none: remove the "
                        f"pool's {SHARD} label, or label the run {SHARD}={other}"
                    )
                else:
                    where = (
                        f"which is not in the run's shard {self.shard}: label the pool "
                        f"{SHARD}={self.shard}, or run the workflow in the pool's shard"
                    )
                message = (
                    f"task {key} waits for WorkerPool {run.namespace}/{pool}, {where} "
                    "(the step's timeout.scheduleToClose bounds the wait)"
                )
                log.warning("%s", message)
                involved = {
                    "kind": "WorkflowRun",
                    "name": run.name,
                    "namespace": run.namespace,
                    "uid": run.uid,
                }
                reason = "WorkerPoolNotFound"
                now = self.clock()
                await post_event(self.kube, involved, "Warning", reason, message, now=now)
        if runtime.token is None and runtime.body is not None:
            await self._load_token(runtime)
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Fair between trees of runs: a parent fanning out to many child runs holds no more
        # of the pool than one run does.
        if not runtime.queue.push(run.root, key, slot):
            runtime.queue.discard(key)
            runtime.queue.push(run.root, key, slot)
        self._pump(runtime)
        self._wake.set()
        try:
            await slot
        except BaseException:
            runtime.queue.discard(key)
            self._pump(runtime)
            raise
        assert runtime.body is not None
        return runtime.body

    def token(self, run: RunRef, pool: str) -> str | None:
        """The bearer token the workers of `pool` accept now (see baton.pools.tokens)."""
        return self._runtime(run.namespace, pool).token

    def release(self, run: RunRef, pool: str, key: str) -> None:
        """The task `key` acquired finished: its slot is free."""
        runtime = self._runtime(run.namespace, pool)
        runtime.queue.done(key)
        self._pump(runtime)
        self._wake.set()

    def samples(self) -> list[metrics.PoolSample]:
        """Every pool's queue and workers, for /metrics; nothing on a standby replica (the
        active one reports them, and the sum over replicas stays true)."""
        if not self.is_active():
            return []
        found = []
        for runtime in self._pools.values():
            if runtime.body is None:
                continue
            status = runtime.written_status or {}
            found.append(
                metrics.PoolSample(
                    namespace=runtime.namespace,
                    pool=runtime.name,
                    backlog=runtime.queue.backlog,
                    in_flight=runtime.queue.in_flight,
                    desired_replicas=int(status.get("desiredReplicas") or 0),
                    ready_replicas=int(status.get("readyReplicas") or 0),
                )
            )
        return found

    def capacity_of(self, runtime: PoolRuntime) -> int:
        """Tasks the pool may run at once now."""
        spec = runtime.spec()
        if spec is None or runtime.token is None:
            return 0  # no task leaves without the token its workers check
        if spec.image is None:
            return spec.max_replicas * spec.tasks_per_replica
        assert runtime.body is not None
        if runtime.blocked is not None or not objects.owned_by(runtime.deployment, runtime.body):
            return 0  # tasks must not go to a Service or workers that are not the pool's
        _replicas, ready = objects.observed_replicas(runtime.deployment)
        return capacity(ready, spec.tasks_per_replica)

    def _pump(self, runtime: PoolRuntime) -> None:
        for task in runtime.queue.take(self.capacity_of(runtime)):
            if task.item.done():
                runtime.queue.done(task.key)
            else:
                task.item.set_result(None)

    # -- reconciliation -------------------------------------------------------------------

    def start(self) -> None:
        """Start the reconcile loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="baton-pools")

    async def close(self) -> None:
        """Stop the reconcile loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if not self.is_active():
                continue
            for runtime in list(self._pools.values()):
                try:
                    await self.reconcile(runtime)
                except ApiError as exc:
                    log.warning("WorkerPool %s/%s: %s", runtime.namespace, runtime.name, exc)
                except Exception:
                    log.exception("WorkerPool %s/%s", runtime.namespace, runtime.name)
            await asyncio.sleep(0.2)  # a burst of wake-ups is one reconciliation

    async def reconcile(self, runtime: PoolRuntime) -> None:
        """Apply the pool's Deployment and Service, its scale, and its status."""
        if runtime.body is None:
            return
        spec = runtime.spec()
        now = self.clock()
        if spec is None:
            # The schema let through what the model refuses: say so, touch nothing else.
            invalid = runtime.invalid()
            if invalid is not None:
                await self._report_blocked(runtime, invalid, now)
                await self._write_status(runtime, None, 0, now)
            return
        backlog, in_flight = runtime.queue.backlog, runtime.queue.in_flight
        desired = 0
        token_blocked = await self._apply_token(runtime, now)
        if token_blocked is not None:
            await self._report_blocked(runtime, token_blocked, now)
        elif spec.image is None:
            await self._report_blocked(runtime, None, now)
        if spec.image is not None and token_blocked is None:
            policy = ScalingPolicy.of(spec)
            current = self._current_replicas(runtime, spec)
            decision = decide(
                policy,
                runtime.scaling,
                backlog=backlog,
                in_flight=in_flight,
                current=current,
                now=now,
            )
            runtime.scaling = decision.state
            desired = decision.replicas
            replicas = None if policy.external else decision.replicas
            await self._apply(runtime, spec, replicas, now, decision.reason)
            if policy.external:
                desired = current
        await self._write_status(runtime, spec, desired, now)

    async def _write_status(
        self, runtime: PoolRuntime, spec: WorkerPoolSpec | None, desired: int, now: float
    ) -> None:
        assert runtime.body is not None
        status = objects.status(
            runtime.body,
            spec,
            deployment_body=runtime.deployment,
            desired=desired,
            backlog=runtime.queue.backlog,
            in_flight=runtime.queue.in_flight,
            now=timestamp(now),
            last_scale_time=runtime.last_scale_time,
            blocked=runtime.blocked,
        )
        if status != runtime.written_status:
            path = path_of("workerpools", runtime.namespace, runtime.name, subresource="status")
            await self.kube.patch(path, {"status": status})
            runtime.written_status = status

    def _current_replicas(self, runtime: PoolRuntime, spec: WorkerPoolSpec) -> int:
        assert runtime.body is not None
        if not objects.owned_by(runtime.deployment, runtime.body):
            return spec.min_replicas
        assert runtime.deployment is not None
        replicas = (runtime.deployment.get("spec") or {}).get("replicas")
        return int(replicas) if isinstance(replicas, int) else 1

    async def _apply(
        self,
        runtime: PoolRuntime,
        spec: WorkerPoolSpec,
        replicas: int | None,
        now: float,
        reason: str,
    ) -> None:
        assert runtime.body is not None
        pool = runtime.body
        generation = pool["metadata"].get("generation")
        deployment_at = deployment_path(runtime.namespace, runtime.name)
        service_at = core_path("services", runtime.namespace, runtime.name)
        if not objects.owned_by(runtime.deployment, pool):
            # Not known to be the pool's (first reconciliation, a namesake the watch showed,
            # or one in conflict): what holds the name now?
            runtime.deployment = await self.kube.get(deployment_at)
        creating = runtime.deployment is None
        service: dict[str, Any] | None = None
        recheck = (
            creating or runtime.applied_generation != generation or runtime.blocked is not None
        )
        if recheck:
            service = await self.kube.get(service_at)
        # Adopt only what the pool created: a foreign object of either name is left as it is
        # (patching it would narrow its selector and make the pool its owner, so deleting the
        # pool would delete it), and nothing is created until the name is free.
        foreign = [
            objects.conflict(kind, found, pool)
            for kind, found in (("Deployment", runtime.deployment), ("Service", service))
            if found is not None and not objects.owned_by(found, pool)
        ]
        blocked = objects.Blocked(objects.NAME_CONFLICT, foreign[0]) if foreign else None
        if blocked is None and runtime.refused is not None and runtime.refused[0] == generation:
            blocked = runtime.refused[1]
        if blocked is None:
            blocked = self._refused_account(runtime, spec)
        if blocked is None and recheck:
            blocked = await self._refused_secret(runtime, spec)
        await self._report_blocked(runtime, blocked, now)
        if blocked is not None:
            return
        wanted = objects.deployment(pool, spec, replicas)
        if runtime.deployment is None:
            if replicas is None:
                wanted["spec"]["replicas"] = spec.min_replicas or 1
            try:
                runtime.deployment = await self.kube.create(
                    deployment_path(runtime.namespace), wanted
                )
            except ApiError as exc:
                if exc.status == 422:
                    await self._refused_template(runtime, exc, now)
                    return
                if exc.status != 409:
                    raise
                # Someone took the name meanwhile: the next reconciliation looks at it.
                runtime.deployment = None
                return
            if await self._apply_service(runtime, spec, service):
                runtime.applied_generation = generation
            return
        uid = runtime.deployment["metadata"].get("uid")
        if runtime.applied_generation != generation:
            # The uid is a precondition: the patch fails (409) rather than reach an object
            # that replaced the pool's under the same name since it was read.
            wanted["metadata"]["uid"] = uid
            try:
                runtime.deployment = await self.kube.patch(deployment_at, wanted)
            except ApiError as exc:
                if exc.status != 422:
                    raise
                await self._refused_template(runtime, exc, now)
                return
            if await self._apply_service(runtime, spec, service):
                runtime.applied_generation = generation
        have = (runtime.deployment.get("spec") or {}).get("replicas")
        if replicas is not None and have != replicas:
            runtime.deployment = await self.kube.patch(
                deployment_at, {"metadata": {"uid": uid}, "spec": {"replicas": replicas}}
            )
            runtime.last_scale_time = timestamp(now)
            metrics.scaled(runtime.namespace, runtime.name, have, replicas)
            message = f"scaled from {have} to {replicas} worker(s): {reason}"
            log.info("WorkerPool %s/%s %s", runtime.namespace, runtime.name, message)
            await post_event(self.kube, _involved(runtime), "Normal", "Scaled", message, now=now)

    async def _load_token(self, runtime: PoolRuntime) -> None:
        """Read the token of a pool the reconcile loop has not handled yet (a pool this
        replica only just saw): its Secret's `current`, if the Secret is the pool's own."""
        assert runtime.body is not None
        at = core_path("secrets", runtime.namespace, tokens.secret_name(runtime.name))
        found = await self.kube.get(at)
        if runtime.token is None and objects.owned_by(found, runtime.body):
            runtime.token_secret = found
            runtime.token = tokens.Tokens.of(found).current

    async def _apply_token(self, runtime: PoolRuntime, now: float) -> objects.Blocked | None:
        """Create the pool's token Secret, carry a rotation one stage on when it is due, and
        remember the token to send; Blocked when a foreign Secret holds the name."""
        assert runtime.body is not None
        pool = runtime.body
        name = tokens.secret_name(runtime.name)
        at = core_path("secrets", runtime.namespace, name)
        if not objects.owned_by(runtime.token_secret, pool):
            runtime.token_secret = await self.kube.get(at)
            found = runtime.token_secret
            if found is not None and not objects.owned_by(found, pool):
                runtime.token = None
                message = objects.conflict("Secret", found, pool, name)
                return objects.Blocked(objects.NAME_CONFLICT, message)
        held = tokens.Tokens.of(runtime.token_secret)
        requested = str((pool["metadata"].get("annotations") or {}).get(tokens.ROTATE) or "")
        spec = runtime.spec()
        assert spec is not None
        step = tokens.plan(
            held,
            requested=requested,
            now=now,
            propagation=spec.token_propagation_seconds,
            fresh=secrets.token_urlsafe(32),
        )
        if step is not None:
            data: dict[str, str | None] = {
                key.value: None for key in tokens.Key if key.value not in step.data
            }
            data.update({k: base64.b64encode(v.encode()).decode() for k, v in step.data.items()})
            metadata = objects.owned_meta(pool, name)
            metadata["annotations"] = dict(step.annotations)
            if runtime.token_secret is None:
                body = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": metadata,
                    "data": {k: v for k, v in data.items() if v is not None},
                }
                try:
                    runtime.token_secret = await self.kube.create(
                        core_path("secrets", runtime.namespace), body
                    )
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                    runtime.token_secret = None  # taken meanwhile: looked at next time
                    runtime.token = None
                    return None
            else:
                # The uid precondition: never write a Secret that replaced the pool's own.
                metadata["uid"] = runtime.token_secret["metadata"].get("uid")
                runtime.token_secret = await self.kube.patch(
                    at, {"metadata": metadata, "data": data}
                )
            log.info("WorkerPool %s/%s token: %s", runtime.namespace, runtime.name, step.stage)
            held = tokens.Tokens.of(runtime.token_secret)
        runtime.token = held.current
        self._pump(runtime)
        return None

    async def _apply_service(
        self, runtime: PoolRuntime, spec: WorkerPoolSpec, existing: Mapping[str, Any] | None
    ) -> bool:
        """Create the pool's Service, or patch `existing` (the pool's own); False when the
        name was taken meanwhile (the next reconciliation reports it)."""
        assert runtime.body is not None
        wanted = objects.service(runtime.body, spec)
        if existing is None:
            try:
                await self.kube.create(core_path("services", runtime.namespace), wanted)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                return False
            return True
        metadata = {**wanted["metadata"], "uid": existing["metadata"].get("uid")}
        path = core_path("services", runtime.namespace, runtime.name)
        await self.kube.patch(path, {"metadata": metadata, "spec": wanted["spec"]})
        return True

    def _refused_account(
        self, runtime: PoolRuntime, spec: WorkerPoolSpec
    ) -> objects.Blocked | None:
        """A `serviceAccountName` the operator's pod policy refuses: whoever may create a
        WorkerPool must not run workers with any account of the namespace through Baton."""
        account = spec.service_account_name
        if not account:
            return None
        field = podpolicy.PodField.SERVICE_ACCOUNT
        violation = podpolicy.refused(field, account, self.service_accounts)
        if violation is None:
            return None
        message = f"spec.{field}: {violation.message}; the pool gets no workers and no tasks"
        return objects.Blocked(podpolicy.POLICY_DENIED, message)

    async def _refused_secret(
        self, runtime: PoolRuntime, spec: WorkerPoolSpec
    ) -> objects.Blocked | None:
        """A Secret the workers would read that runs may not use (baton.executors.secrets):
        through `env`, `envFrom` or a volume, the pool's image would read it through the
        kubelet, whoever created the pool. (`imagePullSecrets` are not checked: the kubelet
        pulls with them, the workers never see them.)"""
        for where, check in _secret_uses(spec):
            try:
                await check(self.kube, runtime.namespace)
            except ActivityError as exc:
                message = f"spec.{where}: {exc.message}; the pool gets no workers"
                return objects.Blocked(exc.error_type, message)
        return None

    async def _refused_template(self, runtime: PoolRuntime, exc: ApiError, now: float) -> None:
        """The API server refused the Deployment made from the pool's spec: the pool is
        blocked until its spec changes (the same refusal is not asked for again each
        reconciliation)."""
        assert runtime.body is not None
        message = (
            f"the API server refused the workers' Deployment: {exc.message}; fix the pool's "
            "spec (template.spec.affinity and topologySpreadConstraints are checked there)"
        )
        blocked = objects.Blocked(INVALID_TEMPLATE, message)
        runtime.refused = (runtime.body["metadata"].get("generation"), blocked)
        await self._report_blocked(runtime, blocked, now)

    async def _report_blocked(
        self, runtime: PoolRuntime, blocked: objects.Blocked | None, now: float
    ) -> None:
        """Remember why the pool's objects are not applied; a Warning Event when that starts
        or changes, a log line when it ends."""
        if blocked == runtime.blocked:
            return
        runtime.blocked = blocked
        if blocked is None:
            log.info("WorkerPool %s/%s is no longer blocked", runtime.namespace, runtime.name)
            return
        log.warning("WorkerPool %s/%s: %s", runtime.namespace, runtime.name, blocked.message)
        await post_event(
            self.kube, _involved(runtime), "Warning", blocked.reason, blocked.message, now=now
        )


SecretCheck = Callable[[Kube, str], Awaitable[object]]


def _secret_uses(spec: WorkerPoolSpec) -> list[tuple[str, SecretCheck]]:
    """Every place of the spec that hands a Secret's content to the workers, with the check
    that it is opted in: `env` (secretKeyRef), `envFrom` (secretRef), volumes (secret)."""
    found: list[tuple[str, SecretCheck]] = []
    for var in spec.env or []:
        if var.value_from is not None:
            ref = var.value_from.secret_key_ref.model_dump()
            found.append((f"env {var.name}", functools.partial(usable_secret, ref=ref)))
    for i, source in enumerate(spec.env_from or []):
        if source.secret_ref is not None:
            name = source.secret_ref.name
            found.append((f"envFrom[{i}]", functools.partial(opted_in_secret, name=name)))
    for volume in (spec.template.spec.volumes if spec.template else None) or []:
        if volume.secret is not None:
            name = volume.secret.secret_name
            where = f"template.spec.volumes {volume.name}"
            found.append((where, functools.partial(opted_in_secret, name=name)))
    return found


def _involved(runtime: PoolRuntime) -> dict[str, Any]:
    """The pool, as the object an Event is about."""
    assert runtime.body is not None
    return {
        "kind": "WorkerPool",
        "name": runtime.name,
        "namespace": runtime.namespace,
        "uid": runtime.body["metadata"].get("uid"),
    }
