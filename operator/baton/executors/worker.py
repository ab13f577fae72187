"""Worker activities: a task sent to its WorkerPool over HTTP once the pool has a free slot.

This module owns the wire protocol between the operator and activity workers (documented in
docs/architecture.md, "Worker protocol"): where a pool is reached, the task request, and how
the worker's answer becomes an engine event. Queueing, fairness and capacity are the
dispatcher's (baton.handlers.pools). It sends through the HTTP executor's code path and
address guard, over a connection pool of its own (`worker_max_connections`): tasks hold their
connection while the activity runs, and must neither take HTTP activities' connections nor be
starved by calls that hang. In front of that pool, `CallLimits` bounds the tasks of one
namespace (`worker_calls_per_namespace`), so one namespace's pools cannot take every connection.
A worker that heartbeats answers with a newline-delimited JSON stream; each heartbeat line is
reported as ActivityHeartbeat. A task is acknowledged (ActivityStarted) when it leaves its
pool's queue (baton.handlers.pools) and holds its namespace's slot, not when it joins it.
Every task carries `Authorization: Bearer <token>`, the `current` token of the pool's token
Secret (baton.pools.tokens), which the workers check: no other pod can post them tasks.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from baton.api.names import check_subdomain
from baton.engine.commands import CancelActivity, StartActivity
from baton.engine.events import ActivityHeartbeat, ActivityStarted
from baton.executors.attempts import ActivityError, AttemptId, InFlight, run_attempt
from baton.executors.base import Report
from baton.executors.http import (
    MAX_RESPONSE_BYTES,
    BodyReader,
    HttpExecutor,
    HttpResponse,
    http_client,
    read_capped,
    response_error,
)
from baton.executors.limits import CallLimits
from baton.store.ref import RunRef

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080

NDJSON = "application/x-ndjson"
"""The content type of a worker's heartbeat stream: heartbeat lines, then the result line."""

ACCEPT = f"application/json, {NDJSON}"


def pool_endpoint(pool: dict[str, Any]) -> str:
    """Where a pool takes tasks: `spec.endpoint`, else its Service
    `http://<pool>.<namespace>.svc:<port>`."""
    spec = pool.get("spec") or {}
    endpoint = spec.get("endpoint")
    if isinstance(endpoint, str) and endpoint:
        return endpoint.rstrip("/")
    meta = pool.get("metadata") or {}
    port = spec.get("port") or DEFAULT_PORT
    return f"http://{meta.get('name')}.{meta.get('namespace')}.svc:{port}"


def activity_url(endpoint: str, activity: str) -> str:
    """The URL of one activity of a pool."""
    return f"{endpoint.rstrip('/')}/activities/{quote(activity, safe='')}"


MAX_HEARTBEAT_DETAILS = 1024
"""Largest heartbeat details (bytes of JSON) kept for the next attempt: they are written to
the run's status and history with each commit, so they must stay a bookmark (a page, an
offset), not data. Larger details keep the heartbeat but not the details."""


def dispatch_request(run: RunRef, command: StartActivity) -> dict[str, Any]:
    """The JSON body of a task: input, idempotency key, attempt, the run it belongs to, and
    the last heartbeat details of an earlier attempt (when there are some)."""
    body = {
        "input": command.spec.get("input"),
        "idempotencyKey": command.idempotency_key,
        "attempt": command.attempt,
        "run": {"name": run.name, "namespace": run.namespace, "uid": run.uid},
    }
    if command.heartbeat_details is not None:
        body["heartbeatDetails"] = command.heartbeat_details
    return body


def heartbeat_details(line: dict[str, Any]) -> Any:
    """The details of a heartbeat line worth keeping: None when absent or over
    MAX_HEARTBEAT_DETAILS."""
    details = line.get("heartbeat")
    if details is None:
        return None
    size = len(json.dumps(details, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_HEARTBEAT_DETAILS:
        log.warning(
            "heartbeat details of %s bytes not kept (at most %s)", size, MAX_HEARTBEAT_DETAILS
        )
        return None
    return details


def worker_result(response: HttpResponse, now: float) -> Any:
    """The output of a worker's answer, or ActivityError for an error it reported or a
    response outside the protocol. Statuses other than 2xx are `HttpError`s, as for HTTP
    activities (a 503 with `Retry-After` from an overloaded worker is honoured)."""
    if response.status == 401:
        # The worker does not (yet) hold the token sent: a rotation's stage reaching it late,
        # or a worker outside the cluster whose copy of the token Secret is stale. Retried
        # under the step's policy, unlike other 4xx answers.
        raise ActivityError(
            "WorkerUnauthorized",
            "the worker refused the pool's token (401): its copy of the token Secret is not "
            "the operator's",
            {"status": 401},
        )
    if not 200 <= response.status < 300:
        raise response_error(response, now)
    body = response.output()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        details = error.get("details")
        details = dict(details) if isinstance(details, dict) else {}
        raise ActivityError(
            str(error.get("type") or "ActivityError"),
            str(error.get("message") or ""),
            details,
            non_retryable=error.get("nonRetryable") is True,
        )
    if isinstance(body, dict) and "output" in body:
        return body["output"]
    raise ActivityError(
        "WorkerProtocolError",
        f"worker answered {response.status} without `output` or `error`",
        {"status": response.status},
    )


def is_heartbeat(line: Any) -> bool:
    """A heartbeat line of a stream: an object with `heartbeat` and no result."""
    return (
        isinstance(line, dict)
        and "heartbeat" in line
        and "output" not in line
        and "error" not in line
    )


def heartbeat_reader(beat: Report, run_event: ActivityHeartbeat) -> BodyReader:
    """Reads a worker's answer: a plain body in full, or a heartbeat stream, reporting
    `run_event` for each heartbeat line and returning the result line as the body. A stream
    that ends without a result line reads as an empty body (`WorkerProtocolError`)."""

    async def read(response: aiohttp.ClientResponse, where: str) -> bytes:
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != NDJSON or not 200 <= response.status < 300:
            return await read_capped(response, where)
        pending = bytearray()
        result = b""

        async def line_of(raw: bytes) -> bytes:
            text = raw.strip()
            if not text:
                return result
            try:
                parsed = json.loads(text)
            except ValueError:
                return text
            if is_heartbeat(parsed):
                await beat(dataclasses.replace(run_event, details=heartbeat_details(parsed)))
                return result
            return text

        async for chunk in response.content.iter_any():
            pending += chunk
            while (end := pending.find(b"\n")) >= 0:
                result = await line_of(bytes(pending[:end]))
                del pending[: end + 1]
            if len(pending) > MAX_RESPONSE_BYTES:
                raise ActivityError(
                    "ResponseTooLarge",
                    f"{where}: a line of the stream is over {MAX_RESPONSE_BYTES} bytes",
                    {"status": response.status, "limit": MAX_RESPONSE_BYTES},
                    non_retryable=True,
                )
        return await line_of(bytes(pending))

    return read


class Dispatcher(Protocol):
    """Queues tasks per pool and hands out slots (baton.handlers.pools.Pools)."""

    async def acquire(self, run: RunRef, pool: str, key: str) -> dict[str, Any]:
        """Wait for a slot of `pool` for task `key`; the WorkerPool object."""

    def release(self, run: RunRef, pool: str, key: str) -> None:
        """Free the slot of task `key`."""

    def token(self, run: RunRef, pool: str) -> str | None:
        """The bearer token the pool's workers accept now (baton.pools.tokens)."""


class WorkerExecutor:
    """Performs `worker` activities by POSTing them to their pool.

    `http` is the HTTP executor whose `send` and guard it uses, over this executor's own
    client (closed with it). `dispatcher` queues each task until its pool has a free slot and
    hands over the pool's object; then the task waits for a slot of its namespace's share of
    the connections (`limits`), and is sent."""

    kind = "worker"

    def __init__(self, http: HttpExecutor, dispatcher: Dispatcher) -> None:
        self.http = http
        self.dispatcher = dispatcher
        settings = http.settings
        self.client = http_client(
            settings, http.resolve, max_connections=settings.worker_max_connections
        )
        self.limits = CallLimits(
            settings.worker_max_connections, per_namespace=settings.worker_calls_per_namespace
        )
        self._inflight = InFlight()

    async def start(self, run: RunRef, command: StartActivity, report: Report) -> None:
        """Dispatch the task; ActivityStarted, heartbeats, then its result, via `report`."""

        async def call() -> Any:
            return await self._dispatch(run, command, report)

        async def attempt() -> None:
            await run_attempt(command, report, call, acknowledge=False)

        self._inflight.spawn(AttemptId.of(run, command), attempt)

    async def cancel(self, run: RunRef, command: CancelActivity) -> None:
        """Stop waiting for the task's answer (the request is cancelled; the worker sees the
        connection close)."""
        await self._inflight.cancel(AttemptId.of(run, command))

    async def close(self) -> None:
        """Cancel every task in flight and close the client."""
        await self._inflight.close()
        await self.client.close()

    async def _dispatch(self, run: RunRef, command: StartActivity, report: Report) -> Any:
        name = check_subdomain(str(command.spec.get("pool") or ""), "worker.pool")
        started = ActivityStarted(key=command.key, attempt=command.attempt)
        # Queued (fairly across runs) until the pool has a free slot and the namespace a free
        # connection; acknowledged only when sent, so that the step's startToClose and
        # heartbeat do not count the queue. Fairness between runs is the pool's queue's, so
        # the limits here are per namespace only.
        pool = await self.dispatcher.acquire(run, name, command.idempotency_key)
        try:
            async with self.limits.slot(run.namespace, run.root):
                await report(started)
                return await self._send(
                    run, command, report, pool, self.dispatcher.token(run, name)
                )
        finally:
            self.dispatcher.release(run, name, command.idempotency_key)

    async def _send(
        self,
        run: RunRef,
        command: StartActivity,
        report: Report,
        pool: dict[str, Any],
        token: str | None,
    ) -> Any:
        activity = str(command.spec.get("activity") or "")
        url = activity_url(pool_endpoint(pool), activity)
        log.debug("worker task %s to %s", command.idempotency_key, url)
        headers = {"Idempotency-Key": command.idempotency_key, "Accept": ACCEPT}
        if token is not None:
            # Read at the send, not at the queue: a rotation that switched meanwhile is
            # followed. Never logged, never in the history.
            headers["Authorization"] = f"Bearer {token}"
        response = await self.http.send(
            "POST",
            url,
            headers=headers,
            body=dispatch_request(run, command),
            timeout=command.start_to_close,
            read=heartbeat_reader(
                report, ActivityHeartbeat(key=command.key, attempt=command.attempt)
            ),
            client=self.client,
        )
        return worker_result(response, time.time())
