"""What the executors share: an attempt reports Started then its outcome, errors of the
executor itself do not leave an attempt hanging, and secrets never reach an event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from executorkit import Events, command

from baton.api.names import InvalidNameError
from baton.executors.attempts import (
    DETAIL_CHARS,
    REDACTED,
    ActivityError,
    parse_output,
    run_attempt,
)


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


def test_a_secret_echoed_in_a_successful_output_is_masked() -> None:
    async def body() -> Any:
        return {"headers": {"Authorization": "Bearer s3cr3t"}, "note": ["s3cr3t"]}

    events = attempt(body, secrets=("Bearer s3cr3t",))
    assert events.events[-1].output == {  # type: ignore[attr-defined]
        "headers": {"Authorization": REDACTED},
        "note": ["s3cr3t"],
    }


def test_a_secret_echoed_percent_encoded_is_masked() -> None:
    async def body() -> Any:
        return "echo: token%3Da%2Fb%20c"

    events = attempt(body, secrets=("token=a/b c",))
    assert events.events[-1].output == f"echo: {REDACTED}"  # type: ignore[attr-defined]


def test_an_error_body_is_masked_before_it_is_cut_so_no_prefix_of_a_secret_is_left() -> None:
    secret = "tok-" + "x" * 40
    # The secret straddles the cut: cutting first would keep its first characters.
    text = "." * (DETAIL_CHARS - 10) + secret + "." * 100

    async def body() -> Any:
        raise ActivityError("HttpError", "500", {"body": text})

    events = attempt(body, secrets=(secret,))
    kept = events.events[-1].error["details"]["body"]  # type: ignore[attr-defined]
    assert "tok-" not in kept
    assert len(kept) <= DETAIL_CHARS + 1
    assert kept.endswith("…")


def test_every_text_of_an_error_is_cut_to_the_detail_limit() -> None:
    async def body() -> Any:
        raise ActivityError("CardDeclined", "m" * 5000, {"why": ["w" * 5000]})

    error = attempt(body).events[-1].error  # type: ignore[attr-defined]
    assert len(error["message"]) == DETAIL_CHARS + 1
    assert len(error["details"]["why"][0]) == DETAIL_CHARS + 1


def test_a_name_that_is_not_a_kubernetes_name_fails_the_attempt_for_good() -> None:
    async def body() -> Any:
        raise InvalidNameError("worker.pool '../x' is not a valid Kubernetes name")

    error = attempt(body).events[-1].error  # type: ignore[attr-defined]
    assert error["type"] == "InvalidName"
    assert error["details"]["nonRetryable"] is True
