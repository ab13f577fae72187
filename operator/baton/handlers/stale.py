"""Stops a crash lost: what a resumed run started and its committed state no longer waits for.

The outbox rule re-performs starts after a crash: everything in flight is in the committed
state (`pending_commands`) and is issued again on resume. Stops are different. `CancelActivity`
and `TerminateChild` are decided once, when a step stops waiting for an attempt (the run is
cancelled, an attempt times out, a sibling fails), and performed after the commit; a crash in
between loses them, and nothing in the committed state says they are still due. What outlives
the operator is what matters: an HTTP call or a worker task dies with the process, but a Job's
pod and a child run go on, and their effects would happen after all.

So a resumed run looks at its Jobs and at the child runs it terminates with it (those owned by
it: parentClosePolicy `terminate`), and stops each one still going whose step its committed
state shows past that attempt — a later attempt, or the same one no longer running. An attempt
the state does not know yet (started by another writer during a hand-over) is left alone.

The same look finds finished Jobs whose outcome is committed but whose TTL was not shortened
(`committed_jobs`): a crash came between the commit and `JobExecutor.outcomes_committed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from baton.api.labels import ACTIVITY_KEY, ATTEMPT
from baton.api.run import RunPhase, StepPhase
from baton.engine import CancelActivity, Command, TerminateChild
from baton.engine.definition import StepKind
from baton.engine.state import State
from baton.executors.job import job_finished


def stale_stops(
    state: State,
    uid: str,
    jobs: Iterable[Mapping[str, Any]],
    children: Iterable[Mapping[str, Any]],
) -> list[Command]:
    """The stops still due for the run `uid` in `state`, given its Jobs and child runs."""
    stops: list[Command] = []
    for job in jobs:
        attempt = _attempt(job, state)
        if attempt is not None and not job_finished(job):
            key, number = attempt
            stops.append(
                CancelActivity(
                    key=key,
                    kind=StepKind.JOB.value,
                    attempt=number,
                    idempotency_key=f"{uid}/{key}/{number}",
                )
            )
    for child in children:
        meta = child["metadata"]
        owners = meta.get("ownerReferences") or []
        status = child.get("status") or {}
        phase = status.get("phase")
        if (
            not any(owner.get("uid") == uid for owner in owners)
            or (child.get("spec") or {}).get("cancel")
            or (phase is not None and RunPhase(phase).finished)
        ):
            continue
        attempt = _attempt(child, state)
        if attempt is not None:
            stops.append(TerminateChild(key=attempt[0], attempt=attempt[1], name=meta["name"]))
    return stops


def committed_jobs(state: State, jobs: Iterable[Mapping[str, Any]], ttl: int) -> list[str]:
    """Finished Jobs whose outcome `state` has committed but which still have the long TTL
    they were created with: the operator stopped between the commit and shortening it
    (`JobExecutor.outcomes_committed`)."""
    return [
        str(job["metadata"]["name"])
        for job in jobs
        if job_finished(job)
        and (job.get("spec") or {}).get("ttlSecondsAfterFinished") != ttl
        and _attempt(job, state) is not None
    ]


def _attempt(obj: Mapping[str, Any], state: State) -> tuple[str, int] | None:
    """The (step key, attempt) `obj` was made for, when `state` has moved past it."""
    annotations = obj["metadata"].get("annotations") or {}
    key, text = annotations.get(ACTIVITY_KEY), annotations.get(ATTEMPT)
    if not key or not text or not str(text).isdigit():
        return None
    step = state.steps.peek(str(key))
    attempt = int(text)
    if step is None or step.attempt < attempt:
        return None
    if step.attempt == attempt and step.phase is StepPhase.RUNNING:
        return None
    return str(key), attempt
