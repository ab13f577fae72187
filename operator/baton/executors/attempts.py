"""What the executors share: attempt identity, in-flight task tracking, activity errors.

An attempt is identified by (run uid, activity key, attempt number) — the same triple the
engine puts in the `Idempotency-Key`. Each executor runs an attempt as one asyncio task tracked
under that identity, so a start re-issued while the attempt is in flight is a no-op, `cancel`
finds the task, and `close` stops them all. An attempt body reports failures by raising
`ActivityError`; `run_attempt` turns its outcome into engine events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from baton.api.names import InvalidNameError
from baton.engine.commands import CancelActivity, StartActivity
from baton.engine.events import ActivityCompleted, ActivityFailed, ActivityStarted
from baton.executors.base import Report
from baton.store.ref import RunRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptId:
    """One attempt of one activity of one run."""

    run_uid: str
    key: str
    attempt: int

    @staticmethod
    def of(run: RunRef, command: StartActivity | CancelActivity) -> AttemptId:
        """The attempt a command is about."""
        return AttemptId(run.uid, command.key, command.attempt)

    def __str__(self) -> str:
        return f"{self.run_uid}/{self.key}/{self.attempt}"


class ActivityError(Exception):
    """An attempt failed with an engine error `{type, message, details}`.

    `non_retryable` sets `details.nonRetryable`, which the engine honours whatever the step's
    retry policy says (retrying cannot fix a refused address or a malformed request).
    `retry_after` is the server's hint in seconds (an HTTP `Retry-After`)."""

    def __init__(
        self,
        error_type: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        non_retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.details = dict(details or {})
        if non_retryable:
            self.details["nonRetryable"] = True
        self.retry_after = retry_after

    def to_error(self) -> dict[str, Any]:
        """The error as the engine reads it."""
        return {"type": self.error_type, "message": self.message, "details": self.details}

    def redacted(self, secrets: Iterable[str]) -> ActivityError:
        """A copy with every occurrence of `secrets` in message and details masked, then every
        text in it cut to DETAIL_CHARS: masked first, so a cut never leaves a secret's prefix."""
        hidden = [s for s in secrets if s]
        return ActivityError(
            self.error_type,
            shorten(redact(self.message, hidden)),
            shorten(redact(self.details, hidden)),
            retry_after=self.retry_after,
        )


REDACTED = "[redacted]"

DETAIL_CHARS = 1024
"""Longest text kept in an error's message or details (errors live in status and history)."""


def secret_forms(secret: str) -> list[str]:
    """The ways a secret shows up verbatim in a reply: as sent, and percent-encoded (a server
    echoing a URL or a form). Other encodings (base64, hashes, splits) cannot be recognised."""
    forms = [secret, quote(secret, safe=""), quote_plus(secret, safe="")]
    return sorted({f for f in forms if f}, key=len, reverse=True)


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """`value` (any JSON) with every occurrence of each secret string (in any of its
    `secret_forms`) replaced by REDACTED. The one place Baton masks secrets: activity outputs,
    errors and log lines all go through it."""
    hidden = sorted({f for s in secrets if s for f in secret_forms(s)}, key=len, reverse=True)
    return _redact(value, hidden) if hidden else value


def _redact(value: Any, hidden: list[str]) -> Any:
    if isinstance(value, str):
        for secret in hidden:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {_redact(k, hidden): _redact(v, hidden) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, hidden) for v in value]
    return value


def shorten(value: Any, limit: int = DETAIL_CHARS) -> Any:
    """`value` (any JSON) with every text over `limit` characters cut there, marked `…`."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, dict):
        return {k: shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v, limit) for v in value]
    return value


def parse_output(text: str) -> Any:
    """An activity's textual result as output: JSON when it parses, else the text; empty → None."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class InFlight:
    """The asyncio tasks of attempts in flight, one per attempt."""

    def __init__(self) -> None:
        self._tasks: dict[AttemptId, asyncio.Task[None]] = {}

    def __contains__(self, attempt: AttemptId) -> bool:
        return attempt in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, attempt: AttemptId, body: Callable[[], Awaitable[None]]) -> bool:
        """Run `body()` as the task of `attempt`; False (and nothing runs) when one already is."""
        if attempt in self._tasks:
            return False

        async def wrapper() -> None:
            await body()

        task = asyncio.create_task(wrapper(), name=f"activity {attempt}")
        self._tasks[attempt] = task
        task.add_done_callback(lambda done: self._forget(attempt, done))
        return True

    def _forget(self, attempt: AttemptId, task: asyncio.Task[None]) -> None:
        if self._tasks.get(attempt) is task:
            del self._tasks[attempt]
        if not task.cancelled() and task.exception() is not None:
            # Bodies handle their own errors; this is a bug, and must not vanish silently.
            log.error("activity task %s crashed", attempt, exc_info=task.exception())

    async def cancel(self, attempt: AttemptId) -> bool:
        """Cancel the task of `attempt` and wait for it to unwind; False when none runs."""
        task = self._tasks.pop(attempt, None)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def close(self) -> None:
        """Cancel every task and wait for them all."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_attempt(
    command: StartActivity,
    report: Report,
    body: Callable[[], Awaitable[Any]],
    *,
    secrets: Callable[[], Iterable[str]] = tuple,
    acknowledge: bool = True,
) -> None:
    """Report the attempt started, await `body()` and report its output or its error.

    `acknowledge=False` leaves ActivityStarted to `body` (a worker task reports it when it
    leaves its pool's queue, which starts its timeout clocks).

    `body` raises ActivityError for failures the activity defines; any other exception is a
    fault of the executor and is reported as a retryable `ExecutorError` rather than leaving the
    attempt hanging until its timeout. `secrets()` lists values that must never appear in an
    event or a log line; they are masked in every error and in the output."""
    key, attempt = command.key, command.attempt
    if acknowledge:
        await report(ActivityStarted(key=key, attempt=attempt))
    try:
        output = await body()
    except InvalidNameError as exc:
        # A rendered name (a Secret, a pool) that is not a Kubernetes name stays one.
        invalid = ActivityError("InvalidName", str(exc), non_retryable=True).redacted(secrets())
        await report(ActivityFailed(key=key, attempt=attempt, error=invalid.to_error()))
        return
    except ActivityError as exc:
        failure = exc.redacted(secrets())
        await report(
            ActivityFailed(
                key=key, attempt=attempt, error=failure.to_error(), retry_after=failure.retry_after
            )
        )
        return
    except Exception as exc:
        message = redact(f"{type(exc).__name__}: {exc}", secrets())
        log.error("activity %s failed inside the executor: %s", command.idempotency_key, message)
        error = {"type": "ExecutorError", "message": message, "details": {}}
        await report(ActivityFailed(key=key, attempt=attempt, error=error))
        return
    # A server may echo what it was sent: a secret header in a reply is masked like in an error.
    output = redact(output, secrets())
    await report(ActivityCompleted(key=key, attempt=attempt, output=output))
