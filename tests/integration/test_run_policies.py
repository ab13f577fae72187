"""Retry, timeout, catch and saga policies, run by the operator on the real control plane."""

from __future__ import annotations

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import REPLY_NEVER, Recorder, Reply
from runkit import FAST_RETRY, http, run, worker_pool, workflow


def test_retryable_http_error_is_retried_with_growing_backoff_until_it_succeeds(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/flaky", Reply(500), Reply(503), Reply(body={"done": True}))
    retry = {"maxAttempts": 4, "initialInterval": "300ms", "backoffCoefficient": 2}
    runs.apply(
        [
            workflow(
                "flaky", [{"name": "call", "http": http(f"{recorder.url}/flaky"), "retry": retry}]
            ),
            run("flaky-1", "flaky"),
        ]
    )
    status = runs.wait("flaky-1")
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["call"]["attempts"] == 3
    assert status["steps"]["call"]["output"] == {"done": True}
    calls = recorder.calls_to("/flaky")
    uid = runs.get("flaky-1")["metadata"]["uid"]
    assert [c.key for c in calls] == [f"{uid}/call/{n}" for n in (1, 2, 3)]
    assert calls[1].at - calls[0].at >= 0.3
    assert calls[2].at - calls[1].at >= 0.6


def test_retry_after_header_sets_the_delay_of_the_next_attempt(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/busy", Reply(429, headers={"Retry-After": "2"}), Reply(body={"ok": 1}))
    retry = {"maxAttempts": 3, "initialInterval": "100ms"}
    runs.apply(
        [
            workflow(
                "busy", [{"name": "call", "http": http(f"{recorder.url}/busy"), "retry": retry}]
            ),
            run("busy-1", "busy"),
        ]
    )
    status = runs.wait("busy-1")
    assert status["phase"] == "Succeeded", status
    first, second = recorder.calls_to("/busy")
    assert second.at - first.at >= 2.0


def test_4xx_http_error_fails_the_step_without_a_retry(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/missing", Reply(404, body={"error": "no such account"}))
    runs.apply(
        [
            workflow(
                "missing",
                [
                    {
                        "name": "call",
                        "http": http(f"{recorder.url}/missing"),
                        "retry": {**FAST_RETRY, "maxAttempts": 5},
                    }
                ],
            ),
            run("missing-1", "missing"),
        ]
    )
    status = runs.wait("missing-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "HttpError"
    assert status["error"]["details"]["status"] == 404
    assert status["steps"]["call"]["attempts"] == 1
    assert len(recorder.calls_to("/missing")) == 1


def test_error_type_listed_in_non_retryable_errors_fails_the_step_at_once(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script(
        "/pool/activities/charge",
        Reply(body={"error": {"type": "CardDeclined", "message": "insufficient funds"}}),
    )
    runs.apply(
        [
            worker_pool("payments", f"{recorder.url}/pool"),
            workflow(
                "charge",
                [
                    {
                        "name": "charge",
                        "worker": {"pool": "payments", "activity": "charge"},
                        "retry": {
                            **FAST_RETRY,
                            "maxAttempts": 5,
                            "nonRetryableErrors": ["CardDeclined"],
                        },
                    }
                ],
            ),
            run("charge-1", "charge"),
        ]
    )
    status = runs.wait("charge-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "CardDeclined"
    assert status["error"]["message"] == "insufficient funds"
    assert len(recorder.calls_to("/pool/activities/charge")) == 1


def test_start_to_close_timeout_fails_each_attempt_that_replies_too_slowly(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/slow", Reply(body={"late": True}, delay=REPLY_NEVER))
    runs.apply(
        [
            workflow(
                "slow",
                [
                    {
                        "name": "call",
                        "http": http(f"{recorder.url}/slow"),
                        "timeout": {"startToClose": "1s"},
                        "retry": {**FAST_RETRY, "maxAttempts": 2},
                    }
                ],
            ),
            run("slow-1", "slow"),
        ]
    )
    status = runs.wait("slow-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "Timeout"
    assert status["error"]["details"]["kind"] == "startToClose"
    assert status["steps"]["call"]["attempts"] == 2
    assert len(recorder.calls_to("/slow")) == 2


def test_schedule_to_close_timeout_ends_the_step_before_its_attempts_run_out(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/down", Reply(500), Reply(body={"late": True}, delay=10))
    runs.apply(
        [
            workflow(
                "down",
                [
                    {
                        "name": "call",
                        "http": http(f"{recorder.url}/down"),
                        "timeout": {"scheduleToClose": "2s"},
                        "retry": {**FAST_RETRY, "maxAttempts": 10},
                    }
                ],
            ),
            run("down-1", "down"),
        ]
    )
    status = runs.wait("down-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "Timeout"
    assert status["error"]["details"]["kind"] == "scheduleToClose"
    assert status["steps"]["call"]["attempts"] == 2
    assert len(recorder.calls_to("/down")) == 2


def test_heartbeat_timeout_fails_a_worker_activity_that_sends_no_heartbeat(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    # The worker protocol has no heartbeats yet (docs/architecture.md, "Worker protocol"): any
    # worker task that runs longer than its heartbeat timeout is a worker that stopped beating.
    recorder.script("/pool/activities/render", Reply(body={"output": "late"}, delay=REPLY_NEVER))
    runs.apply(
        [
            worker_pool("renderers", f"{recorder.url}/pool"),
            workflow(
                "render",
                [
                    {
                        "name": "render",
                        "worker": {"pool": "renderers", "activity": "render"},
                        "timeout": {"heartbeat": "1s", "startToClose": "1m"},
                        "retry": {"maxAttempts": 1},
                    }
                ],
            ),
            run("render-1", "render"),
        ]
    )
    status = runs.wait("render-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "Timeout"
    assert status["error"]["details"]["kind"] == "heartbeat"


def test_run_timeout_in_the_run_spec_ends_the_run_timed_out(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow("long", [{"name": "nap", "sleep": {"duration": "1h"}}]),
            run("long-1", "long", timeout="2s"),
        ]
    )
    status = runs.wait("long-1")
    assert status["phase"] == "TimedOut", status
    assert status["error"]["type"] == "Timeout"
    assert status["error"]["details"]["kind"] == "run"
    assert status["steps"]["nap"]["phase"] == "Cancelled"


def test_catch_continues_the_run_with_the_clause_output(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/quote", Reply(404))
    runs.apply(
        [
            workflow(
                "quote",
                [
                    {
                        "name": "quote",
                        "http": http(f"{recorder.url}/quote"),
                        "catch": [
                            {
                                "errors": ["HttpError"],
                                "output": {"price": 0, "status": "${{ error.details.status }}"},
                            }
                        ],
                    },
                    {
                        "name": "use",
                        "http": http(f"{recorder.url}/use", body="${{ steps.quote.output }}"),
                    },
                ],
            ),
            run("quote-1", "quote"),
        ]
    )
    status = runs.wait("quote-1")
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["quote"]["phase"] == "Succeeded"
    assert status["steps"]["quote"]["output"] == {"price": 0, "status": 404}
    assert recorder.calls_to("/use")[0].body == {"price": 0, "status": 404}


def test_catch_runs_recovery_steps_whose_last_output_becomes_the_step_output(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/fallback", Reply(body={"from": "fallback"}))
    runs.apply(
        [
            workflow(
                "recover",
                [
                    {
                        "name": "primary",
                        "fail": {"error": "Unavailable"},
                        "catch": [
                            {"errors": ["SomethingElse"], "output": "wrong clause"},
                            {
                                "errors": ["*"],
                                "steps": [
                                    {"name": "alert", "http": http(f"{recorder.url}/alert")},
                                    {"name": "fallback", "http": http(f"{recorder.url}/fallback")},
                                ],
                            },
                        ],
                    }
                ],
                output="${{ steps.primary.output }}",
            ),
            run("recover-1", "recover"),
        ]
    )
    status = runs.wait("recover-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"from": "fallback"}
    assert [c.path for c in recorder.calls] == ["/alert", "/fallback"]


def test_failed_run_compensates_completed_steps_in_reverse_completion_order(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    for name in ("flight", "hotel", "car"):
        recorder.script(f"/{name}", Reply(201, body={"id": f"{name}-1"}))

    def booking(name: str) -> dict[str, object]:
        return {
            "name": name,
            "http": http(f"{recorder.url}/{name}"),
            "compensate": {
                "http": http(
                    f"{recorder.url}/{name}/${{{{ steps.{name}.output.id }}}}", method="DELETE"
                )
            },
        }

    runs.apply(
        [
            workflow(
                "trip",
                [
                    booking("flight"),
                    booking("hotel"),
                    booking("car"),
                    {"name": "pay", "fail": {"error": "CardDeclined"}},
                ],
            ),
            run("trip-1", "trip"),
        ]
    )
    status = runs.wait("trip-1")
    assert status["phase"] == "Compensated", status
    assert status["error"]["type"] == "CardDeclined"
    deletes = [c.path for c in recorder.calls if c.method == "DELETE"]
    assert deletes == ["/car/car-1", "/hotel/hotel-1", "/flight/flight-1"]
    assert [c["step"] for c in status["compensations"]] == ["car", "hotel", "flight"]
    assert all(c["phase"] == "Succeeded" for c in status["compensations"])


def test_compensation_that_keeps_failing_ends_the_run_compensation_failed(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/hold/h-1", Reply(500))
    runs.apply(
        [
            workflow(
                "hold",
                [
                    {
                        "name": "hold",
                        "http": http(f"{recorder.url}/hold"),
                        "compensate": {
                            "http": http(f"{recorder.url}/hold/h-1", method="DELETE"),
                            "retry": {**FAST_RETRY, "maxAttempts": 2},
                        },
                    },
                    {"name": "boom", "fail": {}},
                ],
            ),
            run("hold-1", "hold"),
        ]
    )
    status = runs.wait("hold-1")
    assert status["phase"] == "CompensationFailed", status
    assert len(recorder.calls_to("/hold/h-1")) == 2
    assert status["compensations"][0]["phase"] == "Failed"
