"""Benchmark: the engine's cost per event as a forEach grows.

A run of one forEach of N worker items (concurrency 50) is driven to the end on the virtual
clock of `baton.engine.Simulation`: each item is acknowledged and completes a second later, so
the run folds 2N + 1 events. Reported per size: the median over rounds of milliseconds per
event, and its ratio to the 10-item run measured in the same round (how the per-event cost
grows with the run's size). The same is measured with `decide` copying the state deeply, as it
did before `State.copy`, as the reference in the same run.

Run: uv run python bench/engine.py [--sizes 100,300,1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import yaml

from baton.api.workflow import WorkflowSpec
from baton.engine import (
    ActivityCompleted,
    ActivityStarted,
    Command,
    Event,
    RunStarted,
    Simulation,
    StartActivity,
    compile_definition,
)
from baton.engine.state import State

DEFINITION = compile_definition(
    WorkflowSpec.model_validate(
        yaml.safe_load(
            """
            steps:
              - name: each
                forEach:
                  items: "input.items"
                  concurrency: 50
                  step:
                    name: appraise
                    worker: {pool: appraisers, activity: appraise, input: "${{ item }}"}
            """
        )
    )
)
BASE_SIZE = 10


def respond(command: Command, now: float) -> list[tuple[float, Event]]:
    if not isinstance(command, StartActivity):
        return []
    return [
        (0.0, ActivityStarted(command.key, command.attempt)),
        (1.0, ActivityCompleted(command.key, command.attempt, {"parcel": command.spec})),
    ]


def ms_per_event(size: int) -> float:
    """Drive one run of `size` items to the end; milliseconds of engine time per event."""
    sim = Simulation(DEFINITION, respond=respond, now=1_000_000.0)
    began = time.perf_counter()
    items = list(range(size))
    sim.deliver(RunStarted(input={"items": items}, run_name="r", namespace="n", uid="u"))
    sim.run(max_events=10 * size + 100)
    elapsed = time.perf_counter() - began
    assert sim.state.phase.value == "Succeeded", sim.state.phase
    return elapsed * 1000 / len(sim.history)


@contextmanager
def deep_copies() -> Iterator[None]:
    """`decide` copying the whole state deeply on every event (the reference)."""
    shallow: Callable[[State], State] = State.copy
    State.copy = copy.deepcopy  # type: ignore[method-assign]
    try:
        yield
    finally:
        State.copy = shallow  # type: ignore[method-assign]


def measure(sizes: list[int], rounds: int) -> dict[str, dict[int, list[float]]]:
    figures: dict[str, dict[int, list[float]]] = {"State.copy": {}, "deepcopy": {}}
    for _ in range(rounds):
        for label, by_size in figures.items():
            with deep_copies() if label == "deepcopy" else contextlib.nullcontext():
                for size in [BASE_SIZE, *sizes]:
                    by_size.setdefault(size, []).append(ms_per_event(size))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures = measure(sizes, args.rounds)
    base = statistics.median(figures["State.copy"][BASE_SIZE])
    print(f"median of {args.rounds} rounds; ratio: to {BASE_SIZE} items with State.copy")
    print(f"{'items':>6} {'copy':>10} {'ms/event':>9} {'ratio':>7}")
    for size in [BASE_SIZE, *sizes]:
        for label, by_size in figures.items():
            median = statistics.median(by_size[size])
            print(f"{size:>6} {label:>10} {median:>9.3f} {median / base:>7.2f}")


if __name__ == "__main__":
    main()
