"""The worker protocol's pure parts: where a pool is reached, the task request, and how a
worker's answer becomes an output or an error the engine classifies."""

from __future__ import annotations

from typing import Any

import pytest
from executorkit import RUN, command
from multidict import CIMultiDict

from baton.engine.definition import RetryPolicy
from baton.engine.errors import StepError
from baton.engine.retry import is_retryable
from baton.executors.attempts import ActivityError
from baton.executors.http import HttpResponse
from baton.executors.worker import activity_url, dispatch_request, pool_endpoint, worker_result

POLICY = RetryPolicy(3, 1.0, 2.0, 100.0, 0.0, frozenset())


def response(status: int, body: bytes, **headers: str) -> HttpResponse:
    return HttpResponse(status, "", CIMultiDict(headers), body)


def pool(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "payments", "namespace": "shop"}, "spec": spec}


def test_a_pool_is_reached_through_its_service_or_its_endpoint() -> None:
    assert pool_endpoint(pool()) == "http://payments.shop.svc:8080"
    assert pool_endpoint(pool(port=9000)) == "http://payments.shop.svc:9000"
    assert pool_endpoint(pool(endpoint="http://127.0.0.1:5000/")) == "http://127.0.0.1:5000"
    assert activity_url("http://w:1", "refund card") == "http://w:1/activities/refund%20card"


def test_the_task_request_carries_input_key_attempt_and_run() -> None:
    cmd = command("worker", {"pool": "payments", "activity": "refund", "input": {"id": 7}})
    assert dispatch_request(RUN, cmd) == {
        "input": {"id": 7},
        "idempotencyKey": f"{RUN.uid}/reserve/1",
        "attempt": 1,
        "run": {"name": RUN.name, "namespace": RUN.namespace, "uid": RUN.uid},
    }


def test_an_output_completes_the_task() -> None:
    assert worker_result(response(200, b'{"output": {"id": "tx"}}'), 0) == {"id": "tx"}
    assert worker_result(response(200, b'{"output": null}'), 0) is None


def test_an_error_the_activity_raised_keeps_its_type() -> None:
    body = b'{"error": {"type": "CardDeclined", "message": "declined", "details": {"code": 51}}}'
    with pytest.raises(ActivityError) as raised:
        worker_result(response(200, body), 0)
    error = raised.value.to_error()
    assert error == {"type": "CardDeclined", "message": "declined", "details": {"code": 51}}
    assert is_retryable(POLICY, StepError.reported(error, "s"))


def test_a_non_retryable_error_is_final_whatever_the_policy() -> None:
    body = b'{"error": {"type": "InvalidCard", "message": "no", "nonRetryable": true}}'
    with pytest.raises(ActivityError) as raised:
        worker_result(response(200, body), 0)
    error = raised.value.to_error()
    assert error["details"] == {"nonRetryable": True}
    assert not is_retryable(POLICY, StepError.reported(error, "s"))


def test_a_status_outside_2xx_is_an_http_error() -> None:
    with pytest.raises(ActivityError) as raised:
        worker_result(response(503, b"busy", **{"Retry-After": "4"}), 0)
    assert raised.value.error_type == "HttpError"
    assert raised.value.details["status"] == 503
    assert raised.value.retry_after == 4.0


@pytest.mark.parametrize("body", [b"", b"ok", b'{"result": 1}', b'{"error": "flat"}'])
def test_an_answer_outside_the_protocol_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ActivityError) as raised:
        worker_result(response(200, body), 0)
    assert raised.value.error_type == "WorkerProtocolError"
