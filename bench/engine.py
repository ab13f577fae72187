"""Benchmark: the engine's cost per event as a forEach grows.

A run of one forEach of N worker items (concurrency 50) is driven to the end on the virtual
clock of `baton.engine.Simulation`: each item is acknowledged and completes a second later, so
the run folds 2N + 1 events. Reported per size: the median over rounds of milliseconds per
event, its ratio to the 10-item run measured in the same invocation (how the per-event cost
grows with the run's size; the target is at most 2 at 10,000 items), and the bytes of the
finished run's status (`status_of`, before outputs are offloaded).

Run: uv run python bench/engine.py [--sizes 100,1000,10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

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
    status_of,
)

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


def ms_per_event(size: int) -> tuple[float, int]:
    """Drive one run of `size` items to the end; milliseconds of engine time per event, and
    the bytes of its final status."""
    sim = Simulation(DEFINITION, respond=respond, now=1_000_000.0)
    began = time.perf_counter()
    items = list(range(size))
    sim.deliver(RunStarted(input={"items": items}, run_name="r", namespace="n", uid="u"))
    sim.run(max_events=10 * size + 100)
    elapsed = time.perf_counter() - began
    assert sim.state.phase.value == "Succeeded", sim.state.phase
    status = json.dumps(status_of(DEFINITION, sim.state), separators=(",", ":"))
    return elapsed * 1000 / len(sim.history), len(status.encode())


def measure(sizes: list[int], rounds: int) -> tuple[dict[int, list[float]], dict[int, int]]:
    figures: dict[int, list[float]] = {}
    status: dict[int, int] = {}
    for _ in range(rounds):
        for size in [BASE_SIZE, *sizes]:
            ms, status[size] = ms_per_event(size)
            figures.setdefault(size, []).append(ms)
    return figures, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures, status = measure(sizes, args.rounds)
    base = statistics.median(figures[BASE_SIZE])
    print(f"median of {args.rounds} rounds; ratio: to {BASE_SIZE} items")
    print(f"{'items':>6} {'ms/event':>9} {'ratio':>7} {'status bytes':>13}")
    for size in [BASE_SIZE, *sizes]:
        median = statistics.median(figures[size])
        print(f"{size:>6} {median:>9.3f} {median / base:>7.2f} {status[size]:>13}")


if __name__ == "__main__":
    main()
