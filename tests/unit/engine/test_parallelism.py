"""forEach in parallel by default, bounded by the run's `parallelism`: activities and child
runs in flight at once in the whole run."""

from __future__ import annotations

from enginekit import Run, definition

from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import DEFAULT_PARALLELISM

FAN_OUT = """
steps:
  - name: each
    forEach:
      items: "input.items"
      step:
        name: call
        http: {url: "http://x/${{ item }}"}
"""


def in_flight(run: Run) -> int:
    return sum(
        1
        for path, step in run.sim.state.steps.items()
        if path.endswith(".call") and step.phase is StepPhase.RUNNING
    )


def test_a_for_each_without_concurrency_starts_every_item() -> None:
    run = Run(FAN_OUT, {"items": list(range(30))})
    assert len(run.started()) == 30


def test_the_default_parallelism_bounds_a_large_for_each() -> None:
    run = Run(FAN_OUT, {"items": list(range(DEFAULT_PARALLELISM + 20))})
    assert len(run.started()) == DEFAULT_PARALLELISM


def test_the_workflow_parallelism_bounds_activities_in_flight() -> None:
    run = Run(FAN_OUT + "parallelism: 3\n", {"items": list(range(10))})
    assert run.started() == ["each[0].call", "each[1].call", "each[2].call"]
    run.complete("each[1].call")
    assert run.started() == ["each[3].call"]
    assert in_flight(run) == 3


def test_the_run_parallelism_overrides_the_workflow_one() -> None:
    run = Run(FAN_OUT + "parallelism: 3\n", {"items": list(range(10))}, parallelism=5)
    assert len(run.started()) == 5
    assert run.sim.state.parallelism == 5


def test_parallelism_bounds_the_whole_run_across_branches() -> None:
    text = """
    parallelism: 2
    steps:
      - name: both
        parallel:
          branches:
            - name: left
              steps:
                - {name: a, http: {url: "http://a"}}
                - {name: b, http: {url: "http://b"}}
            - name: right
              steps:
                - {name: c, http: {url: "http://c"}}
                - {name: d, worker: {pool: p, activity: d}}
    """
    run = Run(text)
    assert run.started() == ["a", "c"]
    run.complete("a")
    assert run.started() == ["b"]


def test_a_retrying_step_keeps_its_slot() -> None:
    run = Run(FAN_OUT + "parallelism: 2\n", {"items": [0, 1, 2]})
    run.fail("each[0].call")
    assert run.step_phase("each[0].call") is StepPhase.BACKOFF
    assert run.step_phase("each[2].call") is None
    run.fire()
    assert run.started() == ["each[0].call"]


def test_a_waiting_step_takes_no_slot() -> None:
    text = """
    parallelism: 1
    steps:
      - name: both
        parallel:
          branches:
            - {name: nap, steps: [{name: nap, sleep: {duration: 1h}}]}
            - {name: work, steps: [{name: work, http: {url: "http://x"}}]}
    """
    run = Run(text)
    assert run.started() == ["work"]
    assert run.step_phase("nap") is StepPhase.WAITING


def test_for_each_concurrency_still_bounds_its_items_below_parallelism() -> None:
    text = FAN_OUT.replace("step:\n", "concurrency: 2\n      step:\n")
    run = Run(text, {"items": list(range(5))})
    assert len(run.started()) == 2


def test_a_bounded_run_still_ends() -> None:
    run = Run(FAN_OUT + "parallelism: 1\n", {"items": list(range(4))})
    for i in range(4):
        run.complete(f"each[{i}].call", i)
    assert run.phase is RunPhase.SUCCEEDED


def test_parallelism_defaults_to_one_hundred() -> None:
    assert definition(FAN_OUT).parallelism == DEFAULT_PARALLELISM == 100
