"""kopf wiring: which watches feed which parts of the shell, and how the operator runs.

Only kopf's low-level `on.event` handlers are used. kopf's create/update handlers are
edge-triggered and keep their own progress in annotations: for a workflow engine whose durable
state *is* its status, that would be a second source of truth and an extra write per change.
Instead each watch event is routed to the run's loop, which decides from its own state what
changed (docs/architecture.md, "Operator", has the measurements behind this choice).

Watches:
- WorkflowRuns: every run's loop is started, fed spec changes, and stopped on deletion; a child
  run reaching a final phase is reported to its parent.
- Workflows: compiled on each new generation, with a Ready or Invalid condition.
- Jobs labelled as Baton's: routed to the Job executor, which turns them into step results.
- WorkerPools and their Deployments: routed to the pools (baton.handlers.pools), which queue
  worker tasks, scale the Deployments and write the pools' status.
- Schedules, and the runs they started: each schedule's loop (baton.handlers.schedules) is
  started, told of spec changes and of its runs' endings, and stopped on deletion.

With `--shard NAME` every watch but the Workflows' sees only objects labelled
`baton.dev/shard=NAME`; without it, only objects without that label (settings.shard).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from baton import metrics
from baton.api.labels import GROUP, PART, SCHEDULE, SHARD, VERSION
from baton.executors.base import Executor
from baton.executors.http import HttpExecutor
from baton.executors.job import JobExecutor
from baton.executors.worker import WorkerExecutor
from baton.handlers.peering import PeeringGuard, own_identity
from baton.handlers.pools import Pools
from baton.handlers.runs import Shell
from baton.handlers.schedules import Schedules
from baton.handlers.workflows import reconcile_workflow
from baton.settings import OperatorSettings
from baton.store.kube import Connection, open_connection

log = logging.getLogger("baton.operator")


@dataclass
class Memo:
    """What the handlers share, created at start-up."""

    shell: Shell
    jobs: JobExecutor
    pools: Pools
    schedules: Schedules
    connection: Connection
    stop_metrics: Callable[[], None]


def build_registry(
    settings: OperatorSettings, identity: str | None = None
) -> kopf.OperatorRegistry:
    """A kopf registry with Baton's handlers, bound to `settings`; `identity` is this replica's
    name in the peering (the one kopf is given)."""
    registry = kopf.OperatorRegistry()
    memo: dict[str, Memo] = {}
    # This replica's shard: runs, pools and what Baton made for them with its label, or (no
    # shard) those without it. kopf filters on the client: shards split the work, not watches.
    shard: dict[str, Any] = {SHARD: settings.shard if settings.shard is not None else kopf.ABSENT}
    guards: list[asyncio.Task[None]] = []

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if settings.kubeconfig:
            os.environ["KUBECONFIG"] = settings.kubeconfig
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start(**kwargs: Any) -> None:
        configure(kwargs["settings"], settings)
        if not settings.history_key:
            log.warning(
                "no --history-key-file: run histories are sealed with an empty key, which "
                "catches accidental edits but not deliberate ones (docs/architecture.md)"
            )
        connection = await open_connection(settings.kubeconfig)
        kube = connection.kube
        http = HttpExecutor(kube, settings)
        jobs = JobExecutor(kube, settings)
        pools = Pools(kube, shard=settings.shard, service_accounts=settings.pod_service_accounts)
        executors: dict[str, Executor] = {
            "http": http,
            "job": jobs,
            "worker": WorkerExecutor(http, pools),
        }
        shell = Shell(kube=kube, settings=settings, executors=executors)
        stop_metrics = metrics.serve(
            settings.metrics_port,
            kube,
            shell.registry.loops,
            pools,
            active=lambda: shell.registry.active,
        )
        pools.is_active = lambda: shell.registry.active
        pools.start()
        schedules = Schedules(kube, is_active=lambda: shell.registry.active)
        memo["baton"] = Memo(
            shell=shell,
            jobs=jobs,
            pools=pools,
            schedules=schedules,
            connection=connection,
            stop_metrics=stop_metrics,
        )
        # What start-up allocated (kopf, the API client's models, the CRD schemas) lives as long
        # as the process: moved out of the collector's reach, a full collection walks only what
        # runs allocate instead of pausing every run for a tenth of a second.
        gc.collect()
        gc.freeze()
        guards.append(asyncio.get_running_loop().create_task(metrics.sample_loop_lag()))
        if settings.standalone:
            shell.open_index()  # runs resume from paged listings of their ConfigMaps
        else:
            # Run loops start once the peering says this replica is the active one.
            shell.registry.active = False
            guard = PeeringGuard(kube, settings, identity or own_identity(), shell.registry)
            guards.append(asyncio.get_running_loop().create_task(guard.run()))
        log.info("baton operator started")

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        for guard in guards:
            guard.cancel()
        state = memo.pop("baton", None)
        if state is None:
            return
        await state.schedules.stop()
        await state.shell.registry.stop()
        for executor in state.shell.executors.values():
            await executor.close()
        await state.shell.children.close()
        await state.pools.close()
        await state.connection.close()
        state.stop_metrics()

    @kopf.on.event(GROUP, VERSION, "workflowruns", labels=shard, registry=registry)
    async def on_run(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        memo["baton"].shell.registry.observe(type, _object(event))

    @kopf.on.event(GROUP, VERSION, "schedules", labels=shard, registry=registry)
    async def on_schedule(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        memo["baton"].schedules.observe(type, _object(event))

    @kopf.on.event(
        GROUP, VERSION, "workflowruns", labels={SCHEDULE: kopf.PRESENT, **shard}, registry=registry
    )
    async def on_scheduled_run(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        memo["baton"].schedules.observe_run(type, _object(event))

    @kopf.on.event(GROUP, VERSION, "workflows", registry=registry)
    async def on_workflow(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        if type == "DELETED":
            return
        plain = _object(event)
        shell = memo["baton"].shell
        if await reconcile_workflow(shell.kube, plain):
            meta = plain["metadata"]
            shell.registry.retry_waiting_on(meta["namespace"], meta["name"])

    @kopf.on.event(GROUP, VERSION, "workerpools", labels=shard, registry=registry)
    async def on_pool(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        memo["baton"].pools.observe_pool(type, _object(event))

    @kopf.on.event("apps", "v1", "deployments", labels={PART: "worker", **shard}, registry=registry)
    async def on_pool_deployment(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        memo["baton"].pools.observe_deployment(type, _object(event))

    @kopf.on.event("batch", "v1", "jobs", labels={PART: "job", **shard}, registry=registry)
    async def on_job(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        jobs = memo["baton"].jobs
        if type == "DELETED":
            await jobs.observe_deleted(_object(event))
        else:
            await jobs.observe(_object(event))

    return registry


def configure(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    """kopf's settings for Baton (why each: see docs/architecture.md, "Operator")."""
    kopf_settings.peering.name = settings.peering
    kopf_settings.peering.standalone = settings.standalone
    kopf_settings.peering.priority = settings.priority
    kopf_settings.peering.mandatory = not settings.standalone
    kopf_settings.peering.lifetime = settings.peering_lifetime
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.watching.server_timeout = 300
    kopf_settings.persistence.finalizer = "baton.dev/operator"
    kopf_settings.persistence.diffbase_storage = NoDiffBase()
    # Watching named namespaces needs no cluster-wide right: without this, kopf lists (and
    # watches) all namespaces to match patterns, and CRDs, which namespaced RBAC refuses — and it
    # retries the refused listing for about a minute before it starts. Globs still need it.
    kopf_settings.scanning.disabled = bool(settings.namespaces) and not any(
        set(pattern) & set("*?[!") for pattern in settings.namespaces
    )


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's "last handled state" of objects, kept for create/update handlers and daemons, of
    which Baton has none (`on.event` handlers only, see `build_registry`).

    kopf builds that state on every watch event whatever handlers there are, from a deep copy of
    the whole object, status included, only to drop the status: for a run, one copy per status
    write the operator makes itself, a sixth of its CPU per step (bench/operator_profile.py),
    and a tenth of its CPU at a restart with 10,000 runs. An empty state costs nothing, and
    nothing is stored."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def run(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (SIGINT/SIGTERM)."""
    identity = own_identity()
    asyncio.run(
        kopf.operator(
            registry=build_registry(settings, identity),
            identity=identity,  # type: ignore[arg-type]  # kopf.Identity is a NewType of str
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=settings.standalone,
            priority=settings.priority,
            peering_name=settings.peering,
            liveness_endpoint=settings.liveness_endpoint,
        )
    )


def _object(event: kopf.RawEvent) -> Mapping[str, Any]:
    """The watched object as the watch stream decoded it, without `metadata.managedFields`: a
    plain dict that kopf neither keeps nor changes after the handler (its patches are objects
    of their own), so loops may hold it.

    Not `body`, kopf's read-only view of the same dict, which loops would have to copy: that
    copy was a tenth of the operator's CPU per step (bench/operator_profile.py). managedFields
    are for the API server's apply; nothing here reads them, and they are a large part of a
    run's body, held for every live run."""
    obj = cast(dict[str, Any], event["object"])
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj
