"""Signals: waiting, buffering, deduplication, handlers, `signals.<name>`, and queries."""

from __future__ import annotations

from itertools import permutations

import pytest
from enginekit import Run

from baton.api.run import RunPhase, StepPhase

APPROVAL = """
steps:
  - {name: submit, http: {url: "http://submit"}}
  - name: approval
    waitForSignal: {name: approve, timeout: 7d}
  - {name: apply, http: {url: "http://apply/${{ steps.approval.output.by }}"}}
"""


def test_wait_for_signal_completes_with_the_payload_as_output() -> None:
    run = Run(APPROVAL)
    run.complete("submit")
    assert run.step_phase("approval") is StepPhase.WAITING
    run.signal(0, "approve", {"by": "ann"})
    assert run.step("approval").output == {"by": "ann"}
    assert run.start_of("apply").spec["url"] == "http://apply/ann"


def test_a_signal_that_arrived_before_the_wait_is_buffered_and_satisfies_it() -> None:
    run = Run(APPROVAL)
    run.signal(0, "approve", {"by": "early"})
    assert run.sim.state.unclaimed[0].name == "approve"
    run.complete("submit")
    assert run.step("approval").output == {"by": "early"}
    assert run.sim.state.unclaimed == []


def test_a_signal_of_another_name_does_not_end_the_wait() -> None:
    run = Run(APPROVAL)
    run.complete("submit")
    run.signal(0, "other", 1)
    assert run.step_phase("approval") is StepPhase.WAITING


def test_a_second_delivery_of_the_same_signal_index_is_ignored() -> None:
    run = Run(
        """
        steps:
          - {name: one, waitForSignal: {name: go}}
          - {name: two, waitForSignal: {name: go}}
        """
    )
    run.signal(0, "go", "first")
    run.signal(0, "go", "first")
    assert run.step("one").output == "first"
    assert run.step_phase("two") is StepPhase.WAITING
    assert run.sim.state.signals_received == 1


def test_signals_delivered_out_of_order_apply_in_index_order() -> None:
    run = Run(
        """
        steps:
          - {name: one, waitForSignal: {name: go}}
          - {name: two, waitForSignal: {name: go}}
        """
    )
    run.signal(1, "go", "second")
    assert run.step_phase("one") is StepPhase.WAITING
    run.signal(0, "go", "first")
    assert (run.step("one").output, run.step("two").output) == ("first", "second")
    assert run.sim.state.signals_received == 2


ORDERED = """
vars: {seen: ""}
signalHandlers:
  - signal: note
    set: {seen: "${{ vars.seen + signal.payload }}"}
steps:
  - {name: one, waitForSignal: {name: note}}
  - {name: two, waitForSignal: {name: note}}
  - {name: three, waitForSignal: {name: note}}
  - {name: rest, sleep: {duration: 1h}}
output: ["${{ steps.one.output }}", "${{ steps.two.output }}", "${{ steps.three.output }}"]
"""
"""Each `note` signal appends its payload to `vars.seen` and ends the next wait."""

ARRIVALS = [
    *permutations(range(4)),
    (7, 6, 5, 4, 3, 2, 1, 0),
    (5, 2, 7, 0, 3, 6, 1, 4),
]


@pytest.mark.parametrize("arrival", ARRIVALS, ids=lambda order: "".join(map(str, order)))
def test_many_signals_delivered_in_any_order_apply_in_index_order(
    arrival: tuple[int, ...],
) -> None:
    run = Run(ORDERED)
    letters = "abcdefgh"
    for index in arrival:
        run.signal(index, "note", letters[index])
    assert run.sim.state.vars["seen"] == letters[: len(arrival)]
    assert run.sim.state.signals_received == len(arrival)
    # Signals past the three waits are kept, oldest first, for a wait that may come.
    assert [s.index for s in run.sim.state.unclaimed] == list(range(3, len(arrival)))
    run.fire()
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == ["a", "b", "c"]


def test_a_wait_times_out_with_a_timeout_error_a_catch_can_recover() -> None:
    run = Run(
        """
        steps:
          - name: approval
            waitForSignal: {name: approve, timeout: 7d}
            catch:
              - errors: [Timeout]
                output: {approved: false, why: "${{ error.type }}"}
        """
    )
    run.advance(7 * 86400)
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("approval").output == {"approved": False, "why": "Timeout"}


def test_signal_handlers_set_vars_whenever_the_signal_arrives() -> None:
    run = Run(
        """
        vars: {priority: normal}
        signalHandlers:
          - signal: updatePriority
            set: {priority: "${{ signal.payload.priority }}"}
        steps: [{name: nap, sleep: {duration: 1h}}]
        """
    )
    run.signal(0, "updatePriority", {"priority": "high"})
    assert run.sim.state.vars == {"priority": "high"}
    run.signal(1, "updatePriority", {"priority": "low"})
    assert run.sim.state.vars == {"priority": "low"}


def test_a_failing_signal_handler_sets_a_condition_and_keeps_the_run_going() -> None:
    run = Run(
        """
        signalHandlers: [{signal: s, set: {x: "${{ signal.payload.missing.deep }}"}}]
        steps: [{name: nap, sleep: {duration: 1h}}]
        """
    )
    run.signal(0, "s", {})
    assert run.phase is RunPhase.RUNNING
    assert run.sim.state.conditions[0]["type"] == "SignalHandlerFailed"


def test_signals_in_expressions_hold_the_latest_payload_of_each_name() -> None:
    run = Run(
        """
        steps:
          - {name: nap, sleep: {duration: 1h}}
          - {name: use, http: {url: "http://x/${{ signals.pick.choice }}"}}
        """
    )
    run.signal(0, "pick", {"choice": "a"})
    run.signal(1, "pick", {"choice": "b"})
    run.fire()
    assert run.start_of("use").spec["url"] == "http://x/b"


def test_queries_are_published_after_each_transition_and_errors_show_as_text() -> None:
    run = Run(
        """
        queries:
          stage: "steps.a.phase"
          broken: "steps.a.output.nothing.here"
        steps: [{name: a, http: {url: "http://a"}}]
        """
    )
    assert run.sim.state.queries["stage"] == "Running"
    assert str(run.sim.state.queries["broken"]).startswith("error: ")
    run.complete("a", {"nothing": {"here": 1}})
    assert run.sim.state.queries == {"stage": "Succeeded", "broken": 1}


BURST = """
vars: {n: 0}
signalHandlers: [{signal: bump, set: {n: "${{ vars.n + signal.payload }}"}}]
steps:
  - {name: gate, waitForSignal: {name: go}}
  - {name: count, set: {n: "${{ vars.n + 1 }}"}}
  - {name: report, http: {url: "http://report/${{ vars.n }}"}}
"""


def test_signals_handed_over_out_of_order_act_as_if_each_arrived_in_turn() -> None:
    # `count` runs between `go` (#0) and `bump` (#1) when they arrive in order; the same must
    # happen when the shell hands #1 over first and the engine holds it back.
    in_order = Run(BURST)
    in_order.signal(0, "go")
    in_order.signal(1, "bump", 10)
    reordered = Run(BURST)
    reordered.signal(1, "bump", 10)
    reordered.signal(0, "go")
    assert in_order.step("report").request["url"] == "http://report/1"
    assert reordered.sim.state == in_order.sim.state
