"""What the executors share: an attempt reports Started then its outcome, errors of the
executor itself do not leave an attempt hanging, and secrets never reach an event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from executorkit import Events, command

from baton.executors.attempts import REDACTED, ActivityError, parse_output, run_attempt


def attempt(body: Any, secrets: tuple[str, ...] = ()) -> Events:
    events = Events()
    asyncio.run(run_attempt(command("http", {}), events, body, secrets=lambda: secrets))
    return events


def test_an_attempt_reports_started_then_its_output() -> None:
    async def body() -> Any:
        return {"ok": True}

    events = attempt(body)
    assert events.types() == ["ActivityStarted", "ActivityCompleted"]
    assert events.events[-1].output == {"ok": True}  # type: ignore[attr-defined]


def test_an_unexpected_exception_is_a_retryable_executor_error() -> None:
    async def body() -> Any:
        raise RuntimeError("boom")

    events = attempt(body)
    error = events.events[-1].error  # type: ignore[attr-defined]
    assert error["type"] == "ExecutorError"
    assert "boom" in error["message"]


def test_secrets_are_masked_in_every_error() -> None:
    async def body() -> Any:
        raise ActivityError("X", "header s3cr3t refused", {"echo": ["s3cr3t", {"s3cr3t": 1}]})

    async def crash() -> Any:
        raise ValueError("Illegal header value b's3cr3t\\n'")

    for failing in (body, crash):
        events = attempt(failing, secrets=("s3cr3t",))
        text = json.dumps([e.to_json() for e in events.events])
        assert "s3cr3t" not in text
        assert REDACTED in text


def test_textual_outputs_parse_as_json_or_stay_text() -> None:
    assert parse_output("") is None
    assert parse_output(" \n") is None
    assert parse_output('{"a": 1}') == {"a": 1}
    assert parse_output("not json") == "not json"
