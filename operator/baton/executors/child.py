"""Child runs: an attempt of a `workflow` step is a WorkflowRun of its own.

This module owns the child WorkflowRun Baton creates for an attempt (`child_manifest`, pure),
its creation or adoption and its termination (`ChildExecutor`), and the reading of a finished
child (`child_result`), which the run registry also uses to route a child's end to its parent.

Idempotence: a child's name is the engine's `child_run_name`, from the parent's uid, the step
key and the attempt (baton.api.attempts), so a re-issued start finds the child of the first
one (409) and adopts it, then reads its state at once — it may have ended while the operator
was down. A child found under that name whose `parent-uid` label names another run is not
ours: the attempt fails with `ChildConflict` and the retry's child has another name.

Runs in flight from before names carried the parent's uid have children named
`<run>-<key>-<attempt>`, cut to 63 characters. Nothing is lost: every child records its parent's
uid (label), its step key and its attempt (annotations), which is how its end reaches the parent
whatever its name. When the parent's loop resumes it lists its children anyway (for the stops a
crash lost) and hands them to `adopt`; a re-issued start or a termination of such an attempt then
uses the child's recorded name instead of creating a second child under the new one.

Start and termination are performed inline, awaited by the run loop, as before they had an
executor of their own: the crash-window tests' failpoint `after-child-create` sits between the
create and the report of it, and a termination is performed between the history append and the
status write (baton.handlers.runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from baton.api.attempts import attempt_name
from baton.api.labels import (
    ACTIVITY_KEY,
    API_VERSION,
    ATTEMPT,
    PARENT_UID,
    ROOT_UID,
    RUN_NAME,
    label_value,
)
from baton.api.run import RunPhase
from baton.engine.commands import StartChildRun, TerminateChild
from baton.engine.events import ActivityStarted, ChildFinished
from baton.executors.attempts import AttemptId
from baton.executors.base import Report
from baton.executors.successor import latest
from baton.failpoints import failpoint
from baton.settings import OperatorSettings
from baton.store.kube import ApiError, Kube, path_of
from baton.store.ref import RunRef
from baton.store.snapshots import Snapshots

CHILD_KIND = "workflow"


def owner_reference(run: RunRef) -> dict[str, Any]:
    """The ownerReference a run puts on what it owns: deleting the run collects the object."""
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowRun",
        "name": run.name,
        "uid": run.uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def finished(body: Mapping[str, Any]) -> bool:
    """True when the run's status shows a final phase."""
    phase = (body.get("status") or {}).get("phase")
    return phase is not None and RunPhase(phase).finished


def child_manifest(
    run: RunRef, command: StartChildRun, settings: OperatorSettings
) -> dict[str, Any]:
    """The WorkflowRun of one attempt of a `workflow` step (pure). Labelled with its parent's
    and its tree's root's uid, annotated with its step key and attempt; owned by the parent
    when the parent terminates it with itself (`parentClosePolicy: terminate`)."""
    metadata: dict[str, Any] = {
        "name": command.name,
        "namespace": run.namespace,
        "labels": {
            **settings.created_labels,
            PARENT_UID: run.uid,
            ROOT_UID: run.root,
            RUN_NAME: label_value(run.name),
        },
        "annotations": {ACTIVITY_KEY: command.key, ATTEMPT: str(command.attempt)},
    }
    if command.parent_close_policy == "terminate":
        metadata["ownerReferences"] = [owner_reference(run)]
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowRun",
        "metadata": metadata,
        "spec": {"workflowRef": {"name": command.workflow_ref}, "input": command.input},
    }


def attempt_of(child: Mapping[str, Any]) -> AttemptId | None:
    """The attempt a child run was started for, from its labels and annotations; None for a
    run that is nobody's child."""
    meta = child.get("metadata") or {}
    uid = (meta.get("labels") or {}).get(PARENT_UID)
    annotations = meta.get("annotations") or {}
    key, attempt = annotations.get(ACTIVITY_KEY), annotations.get(ATTEMPT)
    if not uid or not key or not attempt or not str(attempt).isdigit():
        return None
    return AttemptId(str(uid), str(key), int(attempt))


async def child_result(kube: Kube, child: Mapping[str, Any]) -> ChildFinished | None:
    """ChildFinished for a child run in a final phase (outputs read back if offloaded)."""
    annotations = child["metadata"].get("annotations") or {}
    status = child.get("status") or {}
    if ACTIVITY_KEY not in annotations or not finished(child):
        return None
    if status.get("phase") == RunPhase.CONTINUED_AS_NEW.value:
        # Not the end for the parent: its successor carries the step key and attempt on, and
        # the lineage's last run reports the result.
        return None
    meta = child["metadata"]
    ref = RunRef(meta["name"], meta["namespace"], meta["uid"])
    inlined = await Snapshots(kube, ref, {}, {}).inline(
        {"output": status.get("output"), "error": status.get("error")}
    )
    return ChildFinished(
        key=annotations[ACTIVITY_KEY],
        attempt=int(annotations.get(ATTEMPT, "1")),
        phase=status["phase"],
        output=inlined.get("output"),
        error=inlined.get("error"),
        name=meta["name"],
    )


class ChildExecutor:
    """Starts and terminates child runs, as the other executors start and cancel activities:
    `start` creates (or adopts) the attempt's child and reports ActivityStarted, and its end
    at once if it has ended; later ends arrive through the run registry's watch of runs
    (`child_result`). `cancel` asks the child to cancel (`spec.cancel: true`)."""

    kind = CHILD_KIND

    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self._names: dict[AttemptId, str] = {}
        """Children found under a name other than today's rule gives (made before names carried
        the parent's uid), by attempt: only attempts in flight when the operator was upgraded,
        kept until terminated or the operator stops."""

    def adopt(self, run: RunRef, children: Iterable[Mapping[str, Any]]) -> None:
        """`run`'s children as its resuming loop listed them: an attempt whose child has another
        name than the rule gives is started and terminated under the child's own name."""
        for child in children:
            attempt = attempt_of(child)
            if attempt is None or attempt.run_uid != run.uid:
                continue
            name = str(child["metadata"]["name"])
            if name != attempt_name(run.name, run.uid, attempt.key, attempt.attempt):
                self._names[attempt] = name

    def name_of(self, run: RunRef, command: StartChildRun | TerminateChild) -> str:
        """The name of the attempt's child: an adopted one's own, else the engine's."""
        return self._names.get(AttemptId(run.uid, command.key, command.attempt), command.name)

    async def start(self, run: RunRef, command: StartChildRun, report: Report) -> None:
        """Create or adopt the attempt's child run; ActivityStarted, and ChildFinished when the
        child already ended (or belongs to another run), via `report`."""
        name = self.name_of(run, command)
        if name != command.name:
            command = replace(command, name=name)
        try:
            child = await self.kube.create(
                path_of("workflowruns", run.namespace), child_manifest(run, command, self.settings)
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            existing = await self.kube.get(path_of("workflowruns", run.namespace, name))
            if existing is None:
                raise
            child = existing
        failpoint("after-child-create")
        await report(ActivityStarted(command.key, command.attempt))
        labels = child["metadata"].get("labels") or {}
        if labels.get(PARENT_UID) != run.uid:
            # The name is taken by another run's child (its names came from another uid, so
            # only a hand-made run or a hash collision gets here): its result is not ours.
            # Failing the attempt lets the retry create the next attempt's child.
            error = {
                "type": "ChildConflict",
                "message": f"WorkflowRun {name} exists and belongs to another run",
            }
            await report(
                ChildFinished(
                    command.key, command.attempt, RunPhase.FAILED.value, None, error, name
                )
            )
            return
        # A child that continued as new: its lineage's current run has the result.
        result = await child_result(self.kube, await latest(self.kube, child))
        if result is not None:
            await report(result)

    async def cancel(self, run: RunRef, command: TerminateChild) -> None:
        """Ask the attempt's child to cancel; best effort (a child already gone is fine)."""
        name = self._names.pop(AttemptId(run.uid, command.key, command.attempt), command.name)
        with contextlib.suppress(ApiError):
            child = await self.kube.get(path_of("workflowruns", run.namespace, name))
            if child is not None:
                # A child that continued as new goes on as its successor: cancel that one.
                name = (await latest(self.kube, child))["metadata"]["name"]
            await self.kube.patch(
                path_of("workflowruns", run.namespace, name), {"spec": {"cancel": True}}
            )

    async def close(self) -> None:
        """Nothing to release: children are run by their own loops."""
        self._names.clear()
