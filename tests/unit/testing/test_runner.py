"""`baton.testing.run_workflow`: mocks, virtual time and child runs, as a pytest user sees them."""

from __future__ import annotations

import time

import pytest
import yaml

from baton.api.resources import Workflow, load_yaml_documents
from baton.testing.runner import WorkflowTestError, run_workflow


def workflows(text: str) -> list[Workflow]:
    documents = load_yaml_documents(text)
    return [d for d in documents if isinstance(d, Workflow)]


def one_step(step: str, **spec: object) -> list[Workflow]:
    body = {"steps": [yaml.safe_load(step)], **spec}
    document = {"apiVersion": "baton.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"}}
    return workflows(yaml.safe_dump({**document, "spec": body}))


def test_a_step_without_a_mock_succeeds_with_an_empty_output() -> None:
    result = run_workflow(one_step("{name: call, http: {url: 'http://x'}}"))
    assert result.phase == "Succeeded"
    assert result.steps["call"].output == {}
    assert result.steps["call"].attempts == 1


def test_the_last_mocked_outcome_repeats() -> None:
    result = run_workflow(
        one_step(
            "{name: call, http: {url: 'http://x'}, retry: {maxAttempts: 4, initialInterval: 1s}}"
        ),
        mocks={"steps": {"call": [{"error": {"type": "Flaky"}}]}},
    )
    assert result.phase == "Failed"
    assert result.steps["call"].attempts == 4


def test_mocked_duration_advances_the_virtual_clock() -> None:
    result = run_workflow(
        one_step("{name: call, http: {url: 'http://x'}}"),
        mocks={"steps": {"call": [{"duration": "90m", "output": {"ok": True}}]}},
    )
    assert result.virtual_duration == 90 * 60
    assert result.output is None
    assert result.steps["call"].output == {"ok": True}


def test_a_duration_beyond_start_to_close_times_the_attempt_out() -> None:
    result = run_workflow(
        one_step(
            "{name: call, http: {url: 'http://x'}, timeout: {startToClose: 1m},"
            " retry: {maxAttempts: 2, initialInterval: 1s}}"
        ),
        mocks={"steps": {"call": [{"duration": "5m"}, {"output": {"ok": True}}]}},
    )
    assert result.phase == "Succeeded"
    assert result.steps["call"].attempts == 2
    # the first attempt is abandoned at its 1 minute limit, the retry follows 1 s later
    assert result.virtual_duration == 61


def test_retry_after_of_a_mocked_error_delays_the_next_attempt() -> None:
    result = run_workflow(
        one_step(
            "{name: call, http: {url: 'http://x'}, retry: {maxAttempts: 2, initialInterval: 1s,"
            " maxInterval: 1h}}"
        ),
        mocks={
            "steps": {
                "call": [
                    {
                        "error": {
                            "type": "HttpError",
                            "details": {"status": 429},
                            "retryAfter": "2m",
                        }
                    },
                    {"output": {}},
                ]
            }
        },
    )
    assert result.phase == "Succeeded"
    assert result.virtual_duration == 120


def test_a_seven_day_timer_finishes_instantly() -> None:
    started = time.perf_counter()
    result = run_workflow(one_step("{name: wait, sleep: {duration: 7d}}"))
    elapsed = time.perf_counter() - started
    assert result.virtual_duration == 7 * 86400
    assert elapsed < 5, "virtual time must not be slept through"


def test_a_signal_is_delivered_at_its_virtual_time() -> None:
    result = run_workflow(
        one_step("{name: wait, waitForSignal: {name: go}}"),
        mocks={"signals": [{"name": "go", "payload": {"n": 1}, "at": "3h"}]},
    )
    assert result.steps["wait"].output == {"n": 1}
    assert result.virtual_duration == 3 * 3600


def test_signals_listed_out_of_time_order_arrive_at_their_own_times_in_time_order() -> None:
    result = run_workflow(
        workflows(
            """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: w}
spec:
  vars: {seen: ""}
  signalHandlers:
    - signal: note
      set: {seen: "${{ vars.seen + signal.payload }}"}
  steps:
    - {name: wait, waitForSignal: {name: go, timeout: 90m}}
    - {name: rest, sleep: {duration: 5h}}
  output: "${{ vars.seen }}"
"""
        ),
        mocks={
            "signals": [
                {"name": "note", "payload": "d", "at": "4h"},
                {"name": "note", "payload": "b", "at": "2h"},
                {"name": "go", "payload": {"ok": True}, "at": "1h"},
                {"name": "note", "payload": "c", "at": "3h"},
                {"name": "note", "payload": "a", "at": "30m"},
                {"name": "note", "payload": "e", "at": "4h"},  # same time: after d, as listed
            ]
        },
    )
    assert result.phase == "Succeeded"
    assert result.steps["wait"].output == {"ok": True}  # at 1h, before its 90m timeout
    assert result.output == "abcde"
    assert result.virtual_duration == 6 * 3600  # the wait ended at 1h, then 5h of sleep
    arrivals = [e.at for e in result.events if e.type == "SignalReceived"]
    assert arrivals == [1800, 3600, 7200, 10800, 14400, 14400]


def test_a_wait_that_nothing_answers_is_reported_as_never_finishing() -> None:
    with pytest.raises(WorkflowTestError, match="never finished"):
        run_workflow(one_step("{name: wait, waitForSignal: {name: go}}"))


def test_a_compensation_is_mocked_under_step_dot_compensate() -> None:
    result = run_workflow(
        workflows(
            """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: w}
spec:
  steps:
    - name: book
      http: {url: "http://x"}
      compensate: {http: {method: DELETE, url: "http://x"}, retry: {maxAttempts: 2}}
    - name: boom
      fail: {error: Nope}
"""
        ),
        mocks={"steps": {"book.compensate": [{"error": {"type": "Down"}}]}},
    )
    assert result.phase == "CompensationFailed"
    assert result.compensations == ["book"]


def test_a_child_workflow_in_the_same_file_runs_for_real() -> None:
    result = run_workflow(
        workflows(
            """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: parent}
spec:
  steps:
    - name: child
      workflow: {workflowRef: kid, input: {n: 2}}
  output: "${{ steps.child.output }}"
---
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: kid}
spec:
  steps:
    - name: double
      set: {n: "${{ input.n * 2 }}"}
  output: "${{ vars.n }}"
"""
        )
    )
    assert result.phase == "Succeeded"
    assert result.output == 4


def test_a_child_workflow_missing_from_the_file_can_be_mocked() -> None:
    result = run_workflow(
        one_step("{name: child, workflow: {workflowRef: elsewhere}}"),
        mocks={"steps": {"child": [{"output": {"from": "mock"}}]}},
    )
    assert result.steps["child"].output == {"from": "mock"}


def test_a_child_workflow_missing_and_unmocked_is_an_error_naming_the_step() -> None:
    with pytest.raises(WorkflowTestError, match="step 'child': child workflow 'elsewhere'"):
        run_workflow(one_step("{name: child, workflow: {workflowRef: elsewhere}}"))


def test_input_that_breaks_the_input_schema_is_refused_before_the_run() -> None:
    schema = {"type": "object", "required": ["amount"]}
    with pytest.raises(WorkflowTestError, match="input: 'amount' is a required property"):
        run_workflow(one_step("{name: s, set: {a: 1}}", inputSchema=schema), input={})


def test_an_unknown_workflow_name_lists_the_ones_in_the_file() -> None:
    with pytest.raises(WorkflowTestError, match="it has w"):
        run_workflow(one_step("{name: s, set: {a: 1}}"), workflow="other")


def test_an_invalid_input_schema_is_refused_when_the_definition_compiles() -> None:
    with pytest.raises(WorkflowTestError, match="field 'inputSchema' at type"):
        run_workflow(one_step("{name: s, set: {a: 1}}", inputSchema={"type": "objekt"}))


def test_the_package_docstring_example_holds() -> None:
    from baton.testing import load_workflows as load
    from baton.testing import run_workflow as run

    result = run(
        load("examples/purchase-saga/workflow.yaml"),
        input={"propertyId": "villa-7", "payment": {"amount": 2_500_000}},
        mocks={
            "steps": {
                "reserve": [{"output": {"id": "r-1"}}],
                "pay": [{"output": {"id": "pay-1", "amount": 2_500_000}}],
                "transfer": [{"error": {"type": "TitleDisputed"}}],
            },
            "signals": [{"name": "manualApproval", "payload": {"ok": True}, "at": "2h"}],
        },
    )
    assert result.phase == "Compensated"
    assert result.compensations == ["pay", "reserve"]


def test_a_workflow_recursing_twelve_levels_deep_reaches_the_bottom() -> None:
    recursive = workflows(
        """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: countdown-with-a-long-name-that-fills-most-of-the-name-limit}
spec:
  steps:
    - name: go-down
      when: "input.n > 0"
      workflow:
        workflowRef: countdown-with-a-long-name-that-fills-most-of-the-name-limit
        input: {n: "${{ input.n - 1 }}"}
  output: "${{ input.n == 0 ? 0 : steps['go-down'].output + 1 }}"
"""
    )
    result = run_workflow(recursive, input={"n": 12})
    assert (result.phase, result.output) == ("Succeeded", 12)
    assert len({e.run for e in result.events}) == 13  # the root and twelve children


PARENT_AND_CHILD = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: parent}
spec:
  steps:
    - name: first
      http: {url: "http://x"}
      retry: {maxAttempts: 2, initialInterval: 10s}
    - name: kid
      workflow: {workflowRef: child}
---
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: child}
spec:
  steps:
    - name: inner
      http: {url: "http://z"}
    - name: nap
      sleep: {duration: 1m}
"""


def test_a_mock_for_a_step_the_workflow_lacks_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(WorkflowTestError) as caught:
        run_workflow(workflows(PARENT_AND_CHILD), mocks={"steps": {"frist": [{"output": 1}]}})
    message = str(caught.value)
    assert "steps.frist" in message
    assert "known: first, inner, kid" in message


def test_a_mock_for_a_step_that_performs_nothing_is_an_error() -> None:
    with pytest.raises(WorkflowTestError, match=r"steps\.nap: no step of that name"):
        run_workflow(workflows(PARENT_AND_CHILD), mocks={"steps": {"nap": [{"output": 1}]}})


def test_a_signal_the_workflow_never_waits_for_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(WorkflowTestError) as caught:
        run_workflow(
            one_step("{name: wait, waitForSignal: {name: approve}}"),
            mocks={"signals": [{"name": "aprove"}]},
        )
    assert "'aprove' is no signal workflow 'w' waits for, handles or reads" in str(caught.value)
    assert str(caught.value).endswith("known: approve")


def test_a_signal_only_read_by_an_expression_is_known() -> None:
    result = run_workflow(
        one_step("{name: note, sleep: {duration: 1h}}", output="${{ signals['late-note'].n }}"),
        mocks={"signals": [{"name": "late-note", "payload": {"n": 3}, "at": "1m"}]},
    )
    assert result.output == 3


def test_mocked_actions_cancel_the_run_at_their_virtual_time() -> None:
    result = run_workflow(
        one_step("{name: wait, sleep: {duration: 7d}}"),
        mocks={"actions": [{"action": "cancel", "at": "2h"}]},
    )
    assert result.phase == "Cancelled"
    assert result.virtual_duration == 2 * 3600


def test_mocked_actions_suspend_and_resume_hold_the_next_step_back() -> None:
    steps = workflows(
        """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: w}
spec:
  steps:
    - {name: nap, sleep: {duration: 1h}}
    - {name: call, http: {url: "http://x"}}
"""
    )
    actions = [{"action": "suspend", "at": "30m"}, {"action": "resume", "at": "5h"}]
    result = run_workflow(steps, mocks={"actions": actions})
    assert result.phase == "Succeeded"
    started = [e.at for e in result.events if e.type == "ActivityStarted" and e.step == "call"]
    assert started == [5 * 3600]


def test_a_mocked_redrive_restarts_a_failed_run_from_its_failed_step() -> None:
    result = run_workflow(
        one_step("{name: call, http: {url: 'http://x'}, retry: {maxAttempts: 1}}"),
        mocks={
            "steps": {"call": [{"error": {"type": "Down"}}, {"output": {"ok": True}}]},
            "actions": [{"action": "redrive", "at": "1h"}],
        },
    )
    assert result.phase == "Succeeded"
    assert result.steps["call"].output == {"ok": True}
    assert result.virtual_duration == 3600


def test_json_events_keep_their_detail() -> None:
    result = run_workflow(
        workflows(PARENT_AND_CHILD), mocks={"steps": {"first": [{"error": {"type": "Boom"}}]}}
    )
    failed = next(e.to_json() for e in result.events if e.type == "ActivityFailed")
    assert failed["detail"] == "Boom"
    started = next(e.to_json() for e in result.events if e.type == "ActivityStarted")
    assert started["detail"] == "attempt 1"


def test_a_retry_timer_names_its_step_and_purpose() -> None:
    result = run_workflow(
        workflows(PARENT_AND_CHILD), mocks={"steps": {"first": [{"error": {"type": "Boom"}}, {}]}}
    )
    timers = [
        (e.at, e.step, e.detail) for e in result.events if e.type == "TimerFired" and not e.run
    ]
    assert timers == [(10.0, "first", "retry")]


def test_a_child_runs_events_come_before_the_parent_hears_it_ended() -> None:
    result = run_workflow(workflows(PARENT_AND_CHILD))
    order = [(e.type, e.run != "", e.step) for e in result.events]
    child_timer = next(i for i, (t, child, _) in enumerate(order) if t == "TimerFired" and child)
    finished = order.index(("ChildFinished", False, "kid"))
    assert result.events[child_timer].at == result.events[finished].at == 60.0
    assert child_timer < finished
    assert [e.at for e in result.events] == sorted(e.at for e in result.events)


def test_a_mutex_serialises_the_items_of_a_fan_out_in_a_test() -> None:
    result = run_workflow(
        one_step(
            "{name: each, forEach: {items: '[1, 2, 3]', step: {name: pay, "
            "synchronization: {mutex: account}, http: {url: 'http://x'}}}}"
        ),
        mocks={"steps": {"pay": [{"duration": "10s", "output": {}}]}},
    )
    assert result.phase == "Succeeded"
    assert result.virtual_duration == 30


def test_a_semaphore_of_two_lets_two_items_run_at_once_in_a_test() -> None:
    result = run_workflow(
        one_step(
            "{name: each, forEach: {items: '[1, 2, 3, 4]', step: {name: pay, "
            "synchronization: {semaphore: {name: s, limit: 2}}, http: {url: 'http://x'}}}}"
        ),
        mocks={"steps": {"pay": [{"duration": "10s", "output": {}}]}},
    )
    assert result.phase == "Succeeded"
    assert result.virtual_duration == 20
    waits = [e for e in result.events if e.type == "LockWaiting"]
    assert len(waits) == 2


POLL = (
    "{name: poll, http: {url: 'http://x'}, memoize: {key: same, maxAge: 1h},"
    " repeat: {until: 'steps.poll.output.n == 3', interval: %s}}"
)


def test_a_memoized_step_takes_the_output_stored_earlier_in_the_test() -> None:
    result = run_workflow(
        one_step(POLL % "30m"),
        mocks={"steps": {"poll": [{"output": {"n": 1}}, {"output": {"n": 3}}]}},
    )
    # Iterations at 30m and 60m take what the first stored at 0; at 90m it is too old.
    hits = [e.at for e in result.events if e.detail.startswith("cache hit")]
    assert hits == [30 * 60, 60 * 60]
    assert [e.at for e in result.events if e.type == "ActivityStarted"] == [0, 90 * 60]
    assert result.phase == "Succeeded"


def test_an_entry_older_than_max_age_on_the_virtual_clock_misses() -> None:
    result = run_workflow(
        one_step(POLL % "2h"),
        mocks={"steps": {"poll": [{"output": {"n": 1}}, {"output": {"n": 3}}]}},
    )
    assert result.phase == "Succeeded"
    assert result.steps["poll"].output == {"n": 3}
    assert not result.steps["poll"].cached
    assert [e.at for e in result.events if e.type == "ActivityStarted"] == [0, 2 * 3600]


def test_a_lock_kept_in_another_namespace_behaves_like_a_local_one_in_a_test() -> None:
    result = run_workflow(
        one_step(
            "{name: each, forEach: {items: '[1, 2, 3]', step: {name: pay, "
            "synchronization: {mutex: account, namespace: shared}, http: {url: 'http://x'}}}}"
        ),
        mocks={"steps": {"pay": [{"duration": "10s", "output": {}}]}},
    )
    assert result.phase == "Succeeded"
    assert result.virtual_duration == 30
    assert not [e for e in result.events if e.type == "LockRefused"]
