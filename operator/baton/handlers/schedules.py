"""Schedule loops: one asyncio task per Schedule, sleeping until its next due time.

Each pass reads the schedule's runs (by label, owned by the schedule), asks
`baton.schedules.decide` what to do at the wall-clock time, performs it, then writes the status,
in that order (the outbox rule of the run loop, for schedules):

1. start runs: create `<schedule>-<YYYYMMDDhhmmss>`; a 409 means a pass before a crash made
   it, which is as good (failpoint `after-schedule-start` after each create);
2. cancel and delete runs (overlap policies, history limits), each idempotent;
3. write the status (cursor, buffer, recent actions, next due time) — failpoint
   `before-schedule-status` before it.

A crash anywhere repeats the pass from the last status, and every start it repeats finds its
run: each nominal time starts at most one run. The loop then waits for the earliest of its
next due time (`status.nextRunTime`, logged), a change of the schedule's spec, or a run of the
schedule changing phase; the schedule's own status writes do not wake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from baton.api.conditions import ConditionType, set_condition
from baton.api.labels import (
    API_VERSION,
    SCHEDULE,
    SCHEDULED_TIME,
    SHARD,
    label_value,
)
from baton.api.resources import first_problem
from baton.api.run import RunPhase
from baton.api.schedule import ScheduleSpec
from baton.failpoints import failpoint
from baton.schedules import (
    CancelRun,
    Decision,
    DeleteRun,
    Memory,
    Policy,
    RunView,
    StartRun,
    decide,
    parse_time,
    rfc3339,
)
from baton.store.kube import ApiError, Kube, path_of

log = logging.getLogger("baton.schedules")

STANDBY_POLL = 2.0
"""Seconds a loop on a standby replica waits before asking again whether it is active."""
RETRY_AFTER_ERROR = 5.0
"""Seconds before a pass that the API server refused is tried again."""

Key = tuple[str, str]


def _version(body: Mapping[str, Any]) -> int:
    """The resourceVersion of `body` as a number (etcd's revision), 0 when it is not one."""
    version = str(body["metadata"].get("resourceVersion") or "0")
    return int(version) if version.isdigit() else 0


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


def run_view(run: Mapping[str, Any]) -> RunView:
    """A run of a schedule as the pure logic reads it."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    annotations = meta.get("annotations") or {}
    nominal = annotations.get(SCHEDULED_TIME)
    phase = status.get("phase")
    finished = phase in {p.value for p in RunPhase if p.finished}
    finished_at = status.get("finishedAt")
    try:
        nominal_time = parse_time(nominal) if nominal else None
        finished_time = parse_time(finished_at) if finished_at else None
    except ValueError:
        nominal_time = finished_time = None
    return RunView(
        name=meta["name"],
        nominal=nominal_time,
        finished=finished,
        succeeded=phase == RunPhase.SUCCEEDED.value,
        finished_at=finished_time,
        cancel_requested=bool((run.get("spec") or {}).get("cancel")),
    )


class ScheduleLoop:
    """The task of one Schedule."""

    def __init__(self, kube: Kube, body: Mapping[str, Any], is_active: Callable[[], bool]) -> None:
        self.kube = kube
        self.body = body
        self.is_active = is_active
        meta = body["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(
            self.run(), name=f"schedule {self.namespace}/{self.name}"
        )

    def update(self, body: Mapping[str, Any]) -> None:
        """A new version of the schedule; a pass runs when its spec changed. A watch event
        older than the loop's own last status write is ignored: the next pass must read the
        status it wrote, not the one before."""
        if _version(body) < _version(self.body):
            return
        before = self.body["metadata"].get("generation")
        self.body = body
        if body["metadata"].get("generation") != before:
            self.wake.set()

    async def run(self) -> None:
        while True:
            if not self.is_active():
                await self.sleep(STANDBY_POLL)
                continue
            try:
                wake_at = await self.step(_now())
            except ApiError as exc:
                log.warning("schedule %s/%s: %s; retrying", self.namespace, self.name, exc)
                await self.sleep(RETRY_AFTER_ERROR)
                continue
            timeout = None
            if wake_at is not None:
                timeout = max(0.0, (wake_at - _now()).total_seconds())
            await self.sleep(timeout)

    async def sleep(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    async def step(self, now: datetime) -> datetime | None:
        """One pass; when the next one is due at the latest."""
        body = self.body
        meta = body["metadata"]
        status = dict(body.get("status") or {})
        try:
            spec = ScheduleSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            await self.invalid(status, f"spec.{first_problem(exc, ScheduleSpec)}", now)
            return None
        policy = Policy.of(spec, self.namespace, self.name)
        created = parse_time(meta["creationTimestamp"])
        memory = Memory.from_status(status, created)
        runs = await self.runs(meta["uid"])
        decision = decide(policy, memory, [run_view(r) for r in runs], now)
        await self.perform(decision, spec, meta)
        new_status = {
            **decision.memory.to_status(),
            "summary": policy.calendar.summary(),
            "nextRunTime": rfc3339(decision.next_fire) if decision.next_fire else None,
            "nextNominalTime": rfc3339(decision.next_nominal) if decision.next_nominal else None,
            "active": decision.active,
            "activeRuns": len(decision.active),
            "waitingFor": decision.waiting_for,
            "observedGeneration": meta.get("generation"),
            "conditions": [
                c for c in status.get("conditions") or [] if c.get("type") != ConditionType.INVALID
            ]
            or None,
        }
        if any(status.get(k) != v for k, v in new_status.items()):
            failpoint("before-schedule-status")
            path = path_of("schedules", self.namespace, self.name, subresource="status")
            written = await self.kube.patch(path, {"status": new_status})
            if written.get("metadata"):
                self.body = written
        for action in decision.actions:
            log.info(
                "schedule %s/%s: %s %s%s",
                self.namespace, self.name, action.action.value, rfc3339(action.nominal),
                f" ({action.run or action.message})" if action.run or action.message else "",
            )  # fmt: skip
        log.info("schedule %s/%s waits for %s", self.namespace, self.name, decision.waiting_for)
        return decision.wake_at

    async def runs(self, uid: str) -> list[dict[str, Any]]:
        """The schedule's runs: labelled with its name and owned by it (a run someone else
        labelled is neither counted nor deleted)."""
        listed = await self.kube.list(
            path_of("workflowruns", self.namespace),
            label_selector=f"{SCHEDULE}={label_value(self.name)}",
        )
        return [
            r
            for r in listed
            if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])
        ]

    async def perform(
        self, decision: Decision, spec: ScheduleSpec, meta: Mapping[str, Any]
    ) -> None:
        for command in decision.commands:
            if isinstance(command, StartRun):
                await self.start(command, spec, meta)
                failpoint("after-schedule-start")
            elif isinstance(command, CancelRun):
                try:
                    await self.kube.patch(
                        path_of("workflowruns", self.namespace, command.name),
                        {"spec": {"cancel": True}},
                    )
                except ApiError as exc:
                    if exc.status != 404:  # gone already: nothing to cancel
                        raise
            else:
                assert isinstance(command, DeleteRun)
                await self.kube.delete(path_of("workflowruns", self.namespace, command.name))

    async def start(self, command: StartRun, spec: ScheduleSpec, meta: Mapping[str, Any]) -> None:
        labels = {SCHEDULE: label_value(self.name)}
        shard = (meta.get("labels") or {}).get(SHARD)
        if shard is not None:
            labels[SHARD] = shard
        run_spec: dict[str, Any] = {
            "workflowRef": {"name": spec.workflow_ref.name},
            "input": spec.input,
        }
        if command.abandon_on_cancel:
            run_spec["onCancel"] = "abandon"
        body = {
            "apiVersion": API_VERSION,
            "kind": "WorkflowRun",
            "metadata": {
                "name": command.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {SCHEDULED_TIME: rfc3339(command.nominal)},
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "Schedule",
                        "name": self.name,
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": False,
                    }
                ],
            },
            "spec": run_spec,
        }
        try:
            await self.kube.create(path_of("workflowruns", self.namespace), body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            log.info("schedule %s/%s: run %s existed", self.namespace, self.name, command.name)

    async def invalid(self, status: Mapping[str, Any], message: str, now: datetime) -> None:
        generation = self.body["metadata"].get("generation")
        if status.get("observedGeneration") == generation and any(
            c.get("type") == ConditionType.INVALID for c in status.get("conditions") or []
        ):
            return
        conditions = set_condition(
            list(status.get("conditions") or []), ConditionType.INVALID, True, "InvalidSpec",
            message, now=rfc3339(now), observed_generation=generation,
        )  # fmt: skip
        log.warning("schedule %s/%s is invalid: %s", self.namespace, self.name, message)
        path = path_of("schedules", self.namespace, self.name, subresource="status")
        new = {"conditions": conditions, "observedGeneration": generation, "waitingFor": message}
        await self.kube.patch(path, {"status": new})


class Schedules:
    """Every Schedule's loop, fed by the watches of Schedules and of their runs."""

    def __init__(self, kube: Kube, is_active: Callable[[], bool]) -> None:
        self.kube = kube
        self.is_active = is_active
        self.loops: dict[Key, ScheduleLoop] = {}

    def observe(self, event: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a Schedule."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        loop = self.loops.get(key)
        if event == "DELETED" or meta.get("deletionTimestamp"):
            if loop is not None:
                loop.task.cancel()
                del self.loops[key]
            return
        if loop is None or loop.task.done():
            self.loops[key] = ScheduleLoop(self.kube, body, self.is_active)
        else:
            loop.update(body)

    def observe_run(self, event: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a run a schedule started: its loop looks again (a finished run
        lets a buffered start go, and counts for the history limits)."""
        meta = body["metadata"]
        schedule = (meta.get("labels") or {}).get(SCHEDULE)
        loop = self.loops.get((meta["namespace"], schedule)) if schedule else None
        if loop is None:
            return
        phase = (body.get("status") or {}).get("phase")
        if event in {"ADDED", "DELETED"} or phase in {p.value for p in RunPhase if p.finished}:
            loop.wake.set()

    async def stop(self) -> None:
        """Stop every loop."""
        for loop in self.loops.values():
            loop.task.cancel()
        for loop in self.loops.values():
            with contextlib.suppress(asyncio.CancelledError):
                await loop.task
        self.loops.clear()
