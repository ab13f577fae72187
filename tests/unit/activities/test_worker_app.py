"""The activities SDK served by a real uvicorn on 127.0.0.1: outputs, typed inputs, errors,
sync and async functions, the task's context, heartbeat streams and cancellation."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
import sdk_sample as sample
from baton_activities import ActivityError, activity

pytestmark = pytest.mark.timeout(60)


def task(url: str, name: str, data: Any = None, key: str = "", attempt: int = 1) -> httpx.Response:
    body = {
        "input": data,
        "idempotencyKey": key,
        "attempt": attempt,
        "run": {"name": "purchase-42", "namespace": "shop", "uid": "u1"},
    }
    return httpx.post(f"{url}/activities/{name}", json=body, timeout=30)


def test_a_sync_activity_gets_its_typed_input_and_answers_its_output(url: str) -> None:
    response = task(url, "appraise", {"address": "1 Elm St", "price": "100"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"output": {"address": "1 Elm St", "value": 200}}


def test_an_async_activity_takes_an_object_of_its_parameters(url: str) -> None:
    assert task(url, "add-fees", {"amount": 100}).json() == {"output": pytest.approx(110.0)}
    assert task(url, "add-fees", {"amount": 100, "rate": 0.5}).json() == {"output": 150.0}


def test_an_input_that_does_not_fit_is_a_non_retryable_invalid_input(url: str) -> None:
    error = task(url, "appraise", {"address": "1 Elm St", "price": "cheap"}).json()["error"]
    assert error["type"] == "InvalidInput"
    assert error["nonRetryable"] is True
    assert "price" in error["message"]
    assert "'cheap'" in error["message"]
    assert "appraise" in error["message"]

    error = task(url, "add-fees", {"amount": 1, "currency": "EUR"}).json()["error"]
    assert error["type"] == "InvalidInput"
    assert "currency" in error["message"]
    error = task(url, "add-fees", {}).json()["error"]
    assert error["type"] == "InvalidInput"
    assert "amount: Field required" in error["message"]
    error = task(url, "add-fees", [1, 2]).json()["error"]
    assert error["type"] == "InvalidInput"
    assert "amount, rate" in error["message"]


def test_an_activity_error_is_reported_as_typed(url: str) -> None:
    assert task(url, "decline", {"amount": 300}).json() == {
        "error": {
            "type": "CardDeclined",
            "message": "card declined for 300",
            "nonRetryable": True,
            "details": {"n": 1},
        }
    }


def test_any_other_exception_is_its_class_name_and_retryable(url: str) -> None:
    error = task(url, "explode").json()["error"]
    assert error == {"type": "KeyError", "message": "'ledger'", "nonRetryable": False}


def test_the_activity_sees_its_idempotency_key_attempt_and_run(url: str) -> None:
    output = task(url, "whoami", key="u1/charge/3", attempt=3).json()["output"]
    assert output == {
        "activity": "whoami",
        "key": "u1/charge/3",
        "activityKey": "u1/charge",
        "attempt": 3,
        "run": "purchase-42",
        "heartbeatDetails": None,
    }


def test_the_activity_sees_the_last_heartbeat_details_of_the_previous_attempt(url: str) -> None:
    body = {
        "input": None,
        "idempotencyKey": "u1/import/2",
        "attempt": 2,
        "heartbeatDetails": {"row": 500},
    }
    answer = httpx.post(f"{url}/activities/whoami", json=body, timeout=30).json()
    assert answer["output"]["heartbeatDetails"] == {"row": 500}


def test_a_repeated_idempotency_key_gets_the_first_answer_without_a_second_run(url: str) -> None:
    before = len(sample.calls)
    first = task(url, "whoami", key="u1/transfer/1").json()
    again = task(url, "whoami", key="u1/transfer/1").json()
    assert first == again
    assert sample.calls[before:] == ["u1/transfer/1"]


def test_unknown_activities_and_methods_are_http_errors(url: str) -> None:
    response = task(url, "levitate")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "ActivityNotFound"
    assert httpx.get(f"{url}/activities/appraise").status_code == 405
    assert httpx.post(f"{url}/activities/appraise", content=b"{").status_code == 400
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    assert "appraise" in httpx.get(f"{url}/activities").json()["activities"]


@pytest.mark.parametrize("name", ["survey", "survey_sync"])
def test_heartbeats_stream_as_ndjson_lines_then_the_result(url: str, name: str) -> None:
    body = {"input": {"parcels": 5}, "idempotencyKey": f"u1/{name}/1", "attempt": 1}
    lines: list[Any] = []
    with httpx.stream("POST", f"{url}/activities/{name}", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        lines.extend(json.loads(line) for line in response.iter_lines() if line)
    beats, result = lines[:-1], lines[-1]
    assert result == {"output": 5}
    assert beats
    assert all(set(b) == {"heartbeat"} for b in beats)
    assert beats[0]["heartbeat"] in ({"done": 0}, 0)


def test_a_closed_connection_cancels_an_async_task(url: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{url}/activities/hang",
            json={"input": None, "idempotencyKey": "u1/hang/1"},
            timeout=0.5,
        )
    deadline = time.monotonic() + 5
    while "hang cancelled" not in sample.calls:
        assert time.monotonic() < deadline, sample.calls
        time.sleep(0.02)


def test_concurrent_tasks_run_side_by_side(url: str) -> None:
    answers: list[Any] = []

    def one(n: int) -> None:
        answers.append(task(url, "slow", {"seconds": 0.5}, key=f"u1/slow-{n}/1").json())

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [{"output": "done"}] * 4
    assert time.monotonic() - started < 1.9


def test_activities_stay_plain_functions() -> None:
    @activity
    def double(n: int) -> int:
        return n * 2

    assert double(4) == 8
    assert double.name == "double"
    assert double.bind({"n": "4"}) == ((), {"n": 4})
    with pytest.raises(ActivityError) as caught:
        double.bind({"n": "four"})
    assert caught.value.type == "InvalidInput"
    with pytest.raises(ActivityError, match="takes an object with keys n"):
        double.bind(4)
