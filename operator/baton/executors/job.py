"""Job activities: one batch/v1 Job per attempt, its result read back from the Job's pod.

This module owns the Job manifest Baton creates (`build_job`, pure), the reading of a finished
Job (`job_outcome`, pure), and `JobExecutor`, which creates Jobs and routes what the run loop's
Job watch sees (`observe`, `observe_deleted`) to the run that started them.

Idempotence: a Job's name is `job_name(run, key, attempt)`, from the run's uid (the rule of
child runs too: baton.api.attempts), so a re-issued start finds the Job of the first one (409)
and adopts it, then reads its state at once — it may have finished
while the operator was down. Outcomes seen by the watch are remembered for a while, so a start
re-issued after its Job finished and was deleted reports that outcome instead of creating the
Job again. Baton owns retries: `backoffLimit: 0`, and each attempt is a new Job. A Job named
by the rule before names carried the run's uid (`<run>-<key>-<attempt>`) is handed to `adopt`
by its run's resuming loop, which lists the run's Jobs by label: its attempt is re-issued and
deleted under that name instead of being created a second time.

Output: the main container's termination message (`/dev/termination-log`, at most 4 KiB, read
by the kubelet): JSON when it parses, else the text, empty → null. A failed Job is a
`JobFailed` error with the exit code, unless its termination message is a JSON object with an
`error` (a type name, or `{type, message, nonRetryable}`), which then names the error type —
that is how a Job says `CardDeclined`. A Job past its deadline (startToClose) is a `Timeout`; a
Job deleted before it finished is `JobLost`.

Policy: a `serviceAccountName` or a pod annotation key the operator does not allow
(baton.executors.podpolicy) fails the attempt with a non-retryable `PolicyDenied` before any Job
is created.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from baton.api.attempts import attempt_name
from baton.api.labels import (
    ACTIVITY_KEY,
    API_VERSION,
    ATTEMPT,
    PART,
    RUN_UID,
    STEP,
    label_value,
    owned_labels,
)
from baton.engine.commands import CancelActivity, StartActivity
from baton.engine.events import ActivityCompleted, ActivityFailed, ActivityStarted, Event
from baton.executors import podpolicy
from baton.executors.attempts import ActivityError, AttemptId, InFlight, parse_output
from baton.executors.base import Report
from baton.executors.secrets import usable_secret
from baton.expr import as_text
from baton.settings import UNCOMMITTED_JOB_TTL_SECONDS, OperatorSettings
from baton.store.kube import ApiError, Kube, batch_path, core_path
from baton.store.ref import RunRef

log = logging.getLogger(__name__)


CONTAINER = "main"
"""Name of the Job's one container, whose termination message is the output."""

JOB_PART = "job"

CONFLICT_WAIT_SECONDS = 60.0
"""How long a start waits for a foreign Job holding its name (a deleted run's Job the garbage
collector has not removed yet) before failing the attempt with `JobConflict`."""

TRANSIENT_ERRORS = (OSError, asyncio.TimeoutError, aiohttp.ClientError)
"""Failures to reach the API server: whether a request took effect is unknown, so it is
repeated (create is safe to repeat: the name is deterministic)."""

MESSAGE_CHARS = 1024
"""Longest termination message (or log tail) kept in an error's details."""


def job_name(run: RunRef, key: str, attempt: int) -> str:
    """The deterministic name of the Job of one attempt (the rule of child runs too, from the
    run's uid: baton.api.attempts)."""
    return attempt_name(run.name, run.uid, key, attempt)


def build_job(run: RunRef, command: StartActivity, settings: OperatorSettings) -> dict[str, Any]:
    """The batch/v1 Job of one attempt of a `job` activity (pure).

    `command.spec` is the rendered JobAction (camelCase). An optional `podAnnotations` map in
    the spec is put on the pod template (tests use it to steer kwok's simulated pods)."""
    spec = command.spec
    labels = {
        **owned_labels(run.uid, run.name, JOB_PART, settings.created_labels),
        STEP: label_value(command.step),
    }
    annotations = {ACTIVITY_KEY: command.key, ATTEMPT: str(command.attempt)}
    pod_annotations = {
        **{str(k): as_text(v) for k, v in (spec.get("podAnnotations") or {}).items()},
        **annotations,
    }
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": as_text(spec["image"]),
        "env": [
            *(_env_var(e) for e in spec.get("env") or []),
            # The attempt's identity, for a Job that makes calls of its own to deduplicate.
            {"name": "BATON_IDEMPOTENCY_KEY", "value": command.idempotency_key},
            {"name": "BATON_ATTEMPT", "value": str(command.attempt)},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spec.get("command") is not None:
        container["command"] = [as_text(c) for c in spec["command"]]
    if spec.get("args") is not None:
        container["args"] = [as_text(a) for a in spec["args"]]
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    account = spec.get("serviceAccountName")
    if account:
        pod_spec["serviceAccountName"] = str(account)
    else:
        # Least privilege: a step that names no ServiceAccount gets no API token.
        pod_spec["automountServiceAccountToken"] = False
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": UNCOMMITTED_JOB_TTL_SECONDS,
        "template": {
            "metadata": {"labels": dict(labels), "annotations": pod_annotations},
            "spec": pod_spec,
        },
    }
    if command.start_to_close is not None:
        job_spec["activeDeadlineSeconds"] = max(1, math.ceil(command.start_to_close))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run, command.key, command.attempt),
            "namespace": run.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "WorkflowRun",
                    "name": run.name,
                    "uid": run.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": job_spec,
    }


def _check_policy(command: StartActivity, settings: OperatorSettings) -> None:
    """Refuse, before any Job exists, what the rendered action asks of its pod that the
    operator's policy does not allow (values written out were already checked when the run
    started; these came from an expression). Non-retryable: the next attempt would ask the
    same."""
    found = podpolicy.violations(command.spec, settings)
    if found:
        first = found[0]
        raise ActivityError(
            podpolicy.POLICY_DENIED,
            f"job.{first.field}: {first.message}",
            {"field": f"job.{first.field}", "value": first.value},
            non_retryable=True,
        )


def _env_var(var: Mapping[str, Any]) -> dict[str, Any]:
    """A container env var; a Secret stays a secretKeyRef for the kubelet to resolve."""
    source = var.get("valueFrom")
    if isinstance(source, Mapping) and isinstance(source.get("secretKeyRef"), Mapping):
        ref = source["secretKeyRef"]
        return {
            "name": str(var["name"]),
            "valueFrom": {"secretKeyRef": {"name": str(ref["name"]), "key": str(ref["key"])}},
        }
    value = var.get("value")
    return {"name": str(var["name"]), "value": "" if value is None else as_text(value)}


def attempt_of(job: Mapping[str, Any]) -> AttemptId | None:
    """The attempt a Job of Baton's runs, from its labels and annotations; None for another Job."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    uid, key, attempt = labels.get(RUN_UID), annotations.get(ACTIVITY_KEY), annotations.get(ATTEMPT)
    if labels.get(PART) != JOB_PART or not uid or not key or not attempt:
        return None
    try:
        return AttemptId(str(uid), str(key), int(attempt))
    except ValueError:
        return None


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def job_finished(job: Mapping[str, Any]) -> bool:
    """True once the Job has its final condition, Complete or Failed."""
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None


def _latest_pod(pods: Sequence[Mapping[str, Any]], phase: str) -> Mapping[str, Any] | None:
    matching = [p for p in pods if (p.get("status") or {}).get("phase") == phase]
    candidates = matching or list(pods)
    if not candidates:
        return None
    return max(candidates, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")))


def _terminated(pod: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The terminated state of the main container of `pod`."""
    if pod is None:
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ours = [s for s in statuses if s.get("name") == CONTAINER] or statuses[:1]
    for status in ours:
        for state in (status.get("state"), status.get("lastState")):
            terminated = (state or {}).get("terminated")
            if terminated:
                return terminated  # type: ignore[no-any-return]
    return None


def job_outcome(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Event | None:
    """The event a Job's state means (pure): ActivityCompleted or ActivityFailed once it has
    finished, None while it runs or when it is not one of Baton's Jobs. `pods` are the Job's
    pods (any order)."""
    attempt = attempt_of(job)
    if attempt is None:
        return None
    key, number = attempt.key, attempt.attempt
    name = str((job.get("metadata") or {}).get("name"))
    if _condition(job, "Complete") is not None:
        terminated = _terminated(_latest_pod(pods, "Succeeded"))
        if terminated is None:
            error = {
                "type": "JobLost",
                "message": f"job {name} completed but its pod is gone: its output cannot be read",
                "details": {"job": name},
            }
            return ActivityFailed(key=key, attempt=number, error=error)
        output = parse_output(str(terminated.get("message") or ""))
        return ActivityCompleted(key=key, attempt=number, output=output)
    failed = _condition(job, "Failed")
    if failed is None:
        return None
    reason = str(failed.get("reason") or "")
    if reason == "DeadlineExceeded":
        error = {
            "type": "Timeout",
            "message": f"job {name} ran past its startToClose timeout (activeDeadlineSeconds)",
            "details": {"kind": "startToClose", "job": name, "reason": reason},
        }
        return ActivityFailed(key=key, attempt=number, error=error)
    return ActivityFailed(key=key, attempt=number, error=_failure(name, failed, pods))


def _failure(
    name: str, condition: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    terminated = _terminated(_latest_pod(pods, "Failed")) or {}
    exit_code = terminated.get("exitCode")
    reason = terminated.get("reason") or condition.get("reason")
    details: dict[str, Any] = {"job": name, "exitCode": exit_code, "reason": reason}
    if exit_code is not None:
        message = f"job {name} failed: exit code {exit_code} ({reason})"
    else:
        message = f"job {name} failed: {condition.get('message') or reason}"
    error_type = "JobFailed"
    text = str(terminated.get("message") or "")
    reported = parse_output(text)
    claimed = reported.get("error") if isinstance(reported, dict) else None
    if isinstance(claimed, str) and claimed:
        error_type = claimed
        message = str(reported.get("message") or message)
    elif isinstance(claimed, Mapping) and claimed.get("type"):
        error_type = str(claimed["type"])
        message = str(claimed.get("message") or message)
        if claimed.get("nonRetryable") is True:
            details["nonRetryable"] = True
    elif text:
        # A message that names no error, or the log tail kubelet used instead
        # (FallbackToLogsOnError): kept for the reader, its end being the most telling part.
        details["terminationMessage"] = text[-MESSAGE_CHARS:]
    return {"type": error_type, "message": message, "details": details}


def _lost(attempt: AttemptId, name: str) -> ActivityFailed:
    error = {
        "type": "JobLost",
        "message": f"job {name} was deleted before it finished",
        "details": {"job": name},
    }
    return ActivityFailed(key=attempt.key, attempt=attempt.attempt, error=error)


@dataclass
class _Registration:
    """A started attempt whose outcome has not been reported yet."""

    report: Report
    acknowledged: bool = False
    """ActivityStarted was reported; outcomes seen before wait so they cannot overtake it."""


class JobExecutor:
    """Performs `job` activities as Kubernetes Jobs.

    `start` creates (or adopts) the Job in a task and reports ActivityStarted; the outcome
    arrives through `observe` / `observe_deleted`, which the run loop's Job watch calls for
    every event of a Job labelled `baton.dev/part=job`. `cancel` deletes the Job."""

    kind = "job"

    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self._registered: dict[AttemptId, _Registration] = {}
        # Outcomes known per attempt (reported or waiting for a start), oldest first, kept for
        # longer than finished Jobs live (their TTL) and then forgotten.
        self._outcomes: OrderedDict[AttemptId, tuple[Event, float]] = OrderedDict()
        self._memory = max(3600.0, 2.0 * settings.job_ttl_seconds)
        self._inflight = InFlight()
        self._uncommitted: dict[AttemptId, str] = {}
        """Finished Jobs by attempt, whose outcome was reported and is not yet known to be in
        the run's history: `outcomes_committed` gives them their TTL once it is."""
        self._names: dict[AttemptId, str] = {}
        """Jobs found under a name other than today's rule gives (made before names carried the
        run's uid), by attempt, until their outcome is seen or they are deleted."""

    def adopt(self, run: RunRef, jobs: Iterable[Mapping[str, Any]]) -> None:
        """`run`'s Jobs as its resuming loop listed them: an attempt whose Job has another name
        than `job_name` gives is started (adopted) and deleted under the Job's own name."""
        for job in jobs:
            attempt = attempt_of(job)
            if attempt is None or attempt.run_uid != run.uid:
                continue
            name = str(job["metadata"]["name"])
            if name != job_name(run, attempt.key, attempt.attempt):
                self._names[attempt] = name

    async def start(self, run: RunRef, command: StartActivity, report: Report) -> None:
        """Create or adopt the attempt's Job; ActivityStarted, later its outcome, via `report`."""
        attempt = AttemptId.of(run, command)
        self._registered[attempt] = _Registration(report)
        self._inflight.spawn(attempt, lambda: self._launch(attempt, run, command))

    async def cancel(self, run: RunRef, command: CancelActivity) -> None:
        """Delete the attempt's Job (its pod with it); nothing more is reported for it."""
        attempt = AttemptId.of(run, command)
        self._registered.pop(attempt, None)
        await self._inflight.cancel(attempt)
        name = self._names.pop(attempt, None) or job_name(run, command.key, command.attempt)
        for delay in (0.5, 2.0, None):
            try:
                await self.kube.delete(batch_path(run.namespace, name), propagation="Background")
                return
            except (ApiError, *TRANSIENT_ERRORS) as exc:
                if delay is None:
                    # Its activeDeadlineSeconds (from startToClose) still bounds it.
                    log.warning("could not delete job %s/%s: %s", run.namespace, name, exc)
                    return
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop creating Jobs; Jobs that exist keep running and are adopted after a restart."""
        await self._inflight.close()
        self._registered.clear()

    async def observe(self, job: Mapping[str, Any]) -> None:
        """A watch event of a Job (added or modified): report its outcome once it finished."""
        attempt = attempt_of(job)
        if attempt is None or self._known(attempt) is not None or not job_finished(job):
            return
        pods = await self._pods(job)
        if pods is None:
            return
        event = job_outcome(job, pods)
        if event is not None:
            self._uncommitted[attempt] = str(job["metadata"]["name"])
            await self._record(attempt, event)

    async def observe_deleted(self, job: Mapping[str, Any]) -> None:
        """A Job was deleted: `JobLost` for its attempt, unless its outcome was already seen."""
        attempt = attempt_of(job)
        if attempt is None or self._known(attempt) is not None:
            return
        await self._record(attempt, _lost(attempt, str(job["metadata"]["name"])))

    async def _launch(self, attempt: AttemptId, run: RunRef, command: StartActivity) -> None:
        if self._known(attempt) is None:
            manifest = build_job(run, command, self.settings)
            if attempt in self._names:
                manifest["metadata"]["name"] = self._names[attempt]
            try:
                _check_policy(command, self.settings)
                await self._check_secrets(run, command)
                job, adopted = await self._create_or_adopt(attempt, run, manifest)
            except ActivityError as exc:
                await self._acknowledge(attempt)
                failed = ActivityFailed(
                    key=attempt.key, attempt=attempt.attempt, error=exc.to_error()
                )
                await self._record(attempt, failed)
                return
            if adopted:
                log.info("adopted job %s/%s", run.namespace, manifest["metadata"]["name"])
                await self.observe(job)
        await self._acknowledge(attempt)
        known = self._known(attempt)
        registration = self._registered.pop(attempt, None) if known is not None else None
        if registration is not None and known is not None:
            await registration.report(known)

    async def _check_secrets(self, run: RunRef, command: StartActivity) -> None:
        """Every Secret the Job's env names is usable by runs (`baton.executors.secrets`): the
        kubelet would resolve any Secret of the namespace, whoever created the run."""
        for var in command.spec.get("env") or []:
            source = var.get("valueFrom") if isinstance(var, Mapping) else None
            if isinstance(source, Mapping) and isinstance(source.get("secretKeyRef"), Mapping):
                await usable_secret(self.kube, run.namespace, source["secretKeyRef"])

    async def _acknowledge(self, attempt: AttemptId) -> None:
        registration = self._registered.get(attempt)
        if registration is not None and not registration.acknowledged:
            await registration.report(ActivityStarted(key=attempt.key, attempt=attempt.attempt))
            registration.acknowledged = True

    async def _record(self, attempt: AttemptId, event: Event) -> None:
        """Remember `event` as the attempt's outcome and report it if its start is acknowledged."""
        now = time.monotonic()
        self._names.pop(attempt, None)
        self._outcomes[attempt] = (event, now)
        self._outcomes.move_to_end(attempt)
        while self._outcomes:
            _oldest, (_event, seen) = next(iter(self._outcomes.items()))
            if now - seen <= self._memory:
                break
            forgotten, _ = self._outcomes.popitem(last=False)
            self._uncommitted.pop(forgotten, None)
        registration = self._registered.get(attempt)
        if registration is not None and registration.acknowledged:
            del self._registered[attempt]
            await registration.report(event)

    async def outcomes_committed(self, run: RunRef, events: Iterable[Event]) -> None:
        """`run` committed `events`: the Jobs whose outcomes are among them get `--job-ttl`
        (until then they keep `UNCOMMITTED_JOB_TTL_SECONDS`, and their pods)."""
        names = []
        for event in events:
            if isinstance(event, ActivityCompleted | ActivityFailed):
                attempt = AttemptId(run.uid, event.key, event.attempt)
                name = self._uncommitted.pop(attempt, None)
                if name is not None:
                    names.append(name)
        await self.expire(run.namespace, names)

    async def expire(self, namespace: str, names: Iterable[str]) -> None:
        """Give the finished Jobs `names` the TTL of `--job-ttl`. A Job already gone is fine;
        a write that fails is logged (the Job keeps its week-long TTL)."""
        ttl = {"spec": {"ttlSecondsAfterFinished": self.settings.job_ttl_seconds}}

        async def one(name: str) -> None:
            try:
                await self.kube.patch(batch_path(namespace, name), ttl)
            except ApiError as exc:
                if exc.status != 404:
                    log.warning("could not shorten the TTL of job %s/%s: %s", namespace, name, exc)
            except TRANSIENT_ERRORS as exc:
                log.warning("could not shorten the TTL of job %s/%s: %s", namespace, name, exc)

        await asyncio.gather(*(one(name) for name in names))

    def _known(self, attempt: AttemptId) -> Event | None:
        entry = self._outcomes.get(attempt)
        return entry[0] if entry is not None else None

    async def _create_or_adopt(
        self, attempt: AttemptId, run: RunRef, manifest: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """The attempt's Job: created, or found (409) and checked to be ours."""
        name = str(manifest["metadata"]["name"])
        path = batch_path(run.namespace, name)
        delay = 0.5
        conflict_until: float | None = None
        while True:
            try:
                try:
                    return await self.kube.create(batch_path(run.namespace), manifest), False
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                existing = await self.kube.get(path)
                if existing is None or (existing.get("metadata") or {}).get("deletionTimestamp"):
                    # The attempt's Job existed and is going: creating it again would run it
                    # twice.
                    raise ActivityError("JobLost", f"job {name} was deleted", {"job": name})
                if attempt_of(existing) == attempt:
                    return existing, True
                # Another object holds the name, most likely the Job of a deleted run of the
                # same name that the garbage collector has not removed yet: wait for it.
                now = time.monotonic()
                conflict_until = conflict_until or now + CONFLICT_WAIT_SECONDS
                if now > conflict_until:
                    raise ActivityError(
                        "JobConflict",
                        f"job {name} exists and belongs to another run or activity",
                        {"job": name},
                    )
            except ApiError as exc:
                if exc.status != 429 and exc.status < 500:
                    raise ActivityError(
                        "JobRejected",
                        f"the API server refused job {name}: {exc.status} {exc.message}",
                        {"job": name, "status": exc.status},
                        # An invalid manifest (a bad quantity, say) stays invalid.
                        non_retryable=exc.status == 422,
                    ) from None
                log.warning("creating job %s/%s: %s; retrying", run.namespace, name, exc)
            except TRANSIENT_ERRORS as exc:
                log.warning("creating job %s/%s: %s; retrying", run.namespace, name, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _pods(self, job: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The pods of `job` (by its controller uid); None when they cannot be listed now."""
        meta = job.get("metadata") or {}
        selector = f"controller-uid={meta.get('uid')}"
        for delay in (0.5, 1.0, 2.0, None):
            try:
                return await self.kube.list(
                    core_path("pods", meta.get("namespace")), label_selector=selector
                )
            except (ApiError, *TRANSIENT_ERRORS) as exc:
                if delay is None:
                    log.warning("cannot list pods of job %s: %s", meta.get("name"), exc)
                    return None
                await asyncio.sleep(delay)
        return None
