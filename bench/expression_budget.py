"""Probe: how long can the worst expression the evaluation budget allows hold the event loop?

For each hostile shape (quadratic `map`, nested loops, string growth, large conversions, regex)
the input is grown by bisection to the largest size whose cost bound is still within
EVALUATION_BUDGET, and that evaluation is timed (the slowest of a few rounds). The largest time
is the most an expression can block the operator's event loop, since evaluation is synchronous
and the CEL core cannot be interrupted. Also times planning alone on a large refused input, and
then measures the stall directly: an asyncio loop runs a 1 ms ticker while the same worst
evaluations run on it, and the ticker's largest lateness is reported.

Run: uv run python bench/expression_budget.py
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from baton.expr import EvaluationError, compile_expression
from baton.expr.cost import EVALUATION_BUDGET, plan

Shape = tuple[str, str, Callable[[int], dict[str, Any]]]

SHAPES: list[Shape] = [
    ("map over numbers", "input.l.map(x, x + 1)", lambda n: {"input": {"l": list(range(n))}}),
    ("filter", "input.l.filter(x, x % 2 == 0)", lambda n: {"input": {"l": list(range(n))}}),
    ("all", "input.l.all(x, x >= 0)", lambda n: {"input": {"l": list(range(n))}}),
    (
        "nested map, 3 deep",
        "input.l.map(a, input.l.map(b, input.l.map(c, [a, b, c])))",
        lambda n: {"input": {"l": list(range(n))}},
    ),
    (
        "exists over pairs",
        "input.l.exists(a, input.l.exists(b, a + b == -1))",
        lambda n: {"input": {"l": list(range(n))}},
    ),
    (
        "map of lists",
        "input.l.map(a, input.l)",
        lambda n: {"input": {"l": list(range(n))}},
    ),
    (
        "string growth",
        "input.s + input.s + input.s + input.s + input.s + input.s + input.s + input.s",
        lambda n: {"input": {"s": "x" * n}},
    ),
    (
        "list of maps converted",
        "size(input.d)",
        lambda n: {"input": {"d": [{"a": [1, 2, 3], "b": "x" * 20} for _ in range(n)]}},
    ),
    (
        "map of maps converted",
        "size(input.d)",
        lambda n: {"input": {"d": {f"k{i}": {"a": [1, 2, 3], "b": "x"} for i in range(n)}}},
    ),
    (
        "membership",
        "input.l.exists(a, a in input.l)",
        lambda n: {"input": {"l": list(range(n))}},
    ),
    (
        "regex over text",
        "input.s.matches('^(a+)+b$')",
        lambda n: {"input": {"s": "a" * n}},
    ),
    (
        "regex compiled from input",
        "'x'.matches(input.p)",
        lambda n: {"input": {"p": "(a|b)" * (n // 5 + 1)}},
    ),
    (
        "nested maps over map keys",
        "input.d.map(k, input.d.map(j, k + j))",
        lambda n: {"input": {"d": {f"key{i}": i for i in range(n)}}},
    ),
]


def largest_allowed(source: str, make: Callable[[int], dict[str, Any]]) -> int:
    expression = compile_expression(source, step=None, field="probe")
    low, high = 1, 2
    while plan(expression.tree, expression.roots, make(high), budget=EVALUATION_BUDGET).cost <= (
        EVALUATION_BUDGET
    ):
        low, high = high, high * 2
        if high > 10_000_000:
            return low
    while high - low > 1:
        middle = (low + high) // 2
        cost = plan(expression.tree, expression.roots, make(middle), budget=EVALUATION_BUDGET).cost
        low, high = (middle, high) if cost <= EVALUATION_BUDGET else (low, middle)
    return low


def slowest(source: str, context: dict[str, Any], rounds: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds of the slowest round; on a busy machine the CPU time of this thread
    is what the evaluation itself costs, the wall time what it cost here."""
    expression = compile_expression(source, step=None, field="probe")
    wall = cpu = 0.0
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.thread_time()
        with contextlib.suppress(EvaluationError):
            expression.evaluate(context)
        wall = max(wall, time.perf_counter() - started)
        cpu = max(cpu, time.thread_time() - started_cpu)
    return wall, cpu


async def loop_stall(cases: list[tuple[str, dict[str, Any]]]) -> float:
    """Largest lateness (seconds) of a 1 ms ticker while `cases` are evaluated on the loop."""
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        while running:
            expected = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - expected)

    async def evaluations() -> None:
        for source, context in cases:
            expression = compile_expression(source, step=None, field="probe")
            for _ in range(3):
                with contextlib.suppress(EvaluationError):
                    expression.evaluate(context)
                await asyncio.sleep(0.01)

    tick = asyncio.create_task(ticker())
    await evaluations()
    running = False
    await tick
    return worst


def main() -> None:
    print(f"budget: {EVALUATION_BUDGET:,} operations")
    worst_wall = worst_cpu = 0.0
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, source, make in SHAPES:
        size = largest_allowed(source, make)
        cases.append((source, make(size)))
        wall, cpu = slowest(source, make(size))
        worst_wall, worst_cpu = max(worst_wall, wall), max(worst_cpu, cpu)
        times = f"wall {wall * 1e3:6.1f} ms  CPU {cpu * 1e3:6.1f} ms"
        print(f"{name:27} largest allowed {size:>9,}  {times}")
    wall, cpu = slowest("input.l.map(x, x)", {"input": {"l": list(range(1_000_000))}})
    print(f"{'refusing a 1,000,000 list':43}  wall {wall * 1e3:6.1f} ms  CPU {cpu * 1e3:6.1f} ms")
    print(f"worst allowed evaluation: wall {worst_wall * 1e3:.1f} ms, CPU {worst_cpu * 1e3:.1f} ms")
    stall = asyncio.run(loop_stall(cases))
    print(f"largest event-loop stall while evaluating them: {stall * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
