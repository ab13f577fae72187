"""`baton logs RUN [STEP]`: which pod's logs to show, and what to say when there is none.

A Job step's pods carry the labels and annotations the Job executor puts on its pod template
(baton.api.labels): `baton.dev/run-uid` and `baton.dev/part=job` find every pod of the run,
the `baton.dev/activity-key` annotation says which step instance it ran (`pay`,
`items[3].charge`, `pay/compensate`) and `baton.dev/attempt` which attempt. Pods outlive their
Job's completion until the Job is deleted (its TTL, or the run's), so the logs of any attempt
are there as long as its pod is.

Pure: pods and the run's status in, a choice or a one-line `CommandError` out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from baton.api.labels import ACTIVITY_KEY, ATTEMPT, PART, RUN_UID
from baton.cli import CommandError
from baton.cli.runview import parse_time

JOB_PART = "job"
CONTAINER = "main"
"""The Job's one container (baton.executors.job.CONTAINER)."""


def pod_selector(run_uid: str) -> str:
    """The label selector of every Job pod of the run."""
    return f"{RUN_UID}={run_uid},{PART}={JOB_PART}"


@dataclass(frozen=True)
class StepPod:
    """A pod of one attempt of one Job step."""

    name: str
    key: str
    attempt: int
    created: float
    phase: str

    def describe(self) -> str:
        """`pay, attempt 2 (pod purchase-42-pay-2-x7k2p, Succeeded)`."""
        return f"{self.key}, attempt {self.attempt} (pod {self.name}, {self.phase})"


def step_pods(pods: Iterable[Mapping[str, Any]]) -> list[StepPod]:
    """The pods that say which step and attempt they ran, oldest first."""
    found = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        key = annotations.get(ACTIVITY_KEY)
        try:
            attempt = int(annotations.get(ATTEMPT) or "")
        except ValueError:
            continue
        if not key:
            continue
        found.append(
            StepPod(
                name=str(metadata.get("name", "")),
                key=str(key),
                attempt=attempt,
                created=parse_time(metadata.get("creationTimestamp")) or 0.0,
                phase=str((pod.get("status") or {}).get("phase") or "Unknown"),
            )
        )
    return sorted(found, key=lambda p: (p.created, p.key, p.attempt, p.name))


def choose_pod(
    run: str,
    pods: list[StepPod],
    step: str | None,
    attempt: int | None,
    status: Mapping[str, Any],
) -> StepPod:
    """The pod to show: of `step` (its key, or its name when that names one forEach item's
    step alone), of `attempt` (default: the latest); without `step`, the newest pod.

    Raises a CommandError saying what there is instead when nothing matches."""
    if step is None:
        if not pods:
            raise CommandError(f"{_no_pods(run)}{_job_steps_hint(status)}")
        candidates = pods
    else:
        key = _key_of(step, {p.key for p in pods}, status)
        candidates = [p for p in pods if p.key == key]
        if not candidates:
            raise CommandError(_gone(run, key, status))
    if attempt is not None:
        chosen = [p for p in candidates if p.attempt == attempt]
        if not chosen:
            kept = ", ".join(str(a) for a in sorted({p.attempt for p in candidates}))
            raise CommandError(
                f"no pod of {candidates[0].key}, attempt {attempt} (pods are kept for attempts "
                f"{kept})"
            )
        candidates = chosen
    return max(candidates, key=lambda p: (p.attempt, p.created)) if step else candidates[-1]


def _key_of(step: str, keys: set[str], status: Mapping[str, Any]) -> str:
    """The step key `step` means: itself when it is a key; else the one key whose last part
    (after `.`) it is; else an error naming the keys it could mean."""
    known = keys | set(status.get("steps") or {})
    if step in known:
        return step
    matching = sorted(k for k in known if k.rsplit(".", 1)[-1] == step)
    if len(matching) == 1:
        return matching[0]
    if matching:
        shown = ", ".join(matching[:5]) + (", ..." if len(matching) > 5 else "")
        raise CommandError(f'step "{step}" ran {len(matching)} times: give one of {shown}')
    return step


def _no_pods(run: str) -> str:
    return f'workflowrun "{run}" has no Job step pods'


def _job_steps_hint(status: Mapping[str, Any]) -> str:
    if not status.get("steps"):
        return " (no step has started yet)"
    return " (its Job steps' pods are gone, or it has no Job steps; baton describe shows its steps)"


def _gone(run: str, key: str, status: Mapping[str, Any]) -> str:
    """Why there is no pod of step `key`: no such step, not started, or its pods are gone."""
    entry = (status.get("steps") or {}).get(key)
    if entry is None:
        names = ", ".join(sorted(status.get("steps") or {})[:8])
        known = f" (its steps so far: {names})" if names else " (no step has started yet)"
        return f'workflowrun "{run}" has no step "{key}"{known}'
    phase = entry.get("phase", "Pending")
    if not entry.get("attempts"):
        return f'step "{key}" of workflowrun "{run}" has not started an attempt yet ({phase})'
    error = entry.get("error") or {}
    last = f"; its last error: {error.get('type')}: {error.get('message', '')}" if error else ""
    return (
        f'no pod of step "{key}" of workflowrun "{run}" is left: it is not a Job step, or its '
        f"Job was deleted (ttlSecondsAfterFinished, or a redrive){last}"
    )
