"""Benchmark: CEL evaluation with common-expression-language (Rust core) against cel-python.

Five expressions of the kind workflows hold are compiled once, then evaluated repeatedly over the
same context, with each library and through Baton's own `compile_expression` wrapper. Figures are
medians of repeated timing rounds, with ratios against cel-python measured in the same run.

Run: uv run --group bench python bench/expressions.py
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import Any

import cel
import celpy

from baton.expr import compile_expression

EXPRESSIONS = [
    "steps.pay.output.amount > 1000000",
    "input.payment.amount * 2 + 1",
    "steps.reserve.phase == 'Succeeded' && has(steps.reserve.output.id)",
    "input.items.filter(i, i.price > 100).size()",
    "vars.priority == 'high' ? 'fast' : 'normal'",
]

CONTEXT: dict[str, Any] = {
    "input": {
        "payment": {"amount": 1250},
        "items": [{"price": p} for p in (50, 150, 250, 75, 300)],
    },
    "steps": {
        "pay": {"output": {"amount": 2_500_000}, "phase": "Succeeded", "attempts": 1},
        "reserve": {"output": {"id": "r-1"}, "phase": "Succeeded", "attempts": 1},
    },
    "vars": {"priority": "high"},
}

ROUNDS = 7
NUMBER = 200


def median_us(run: Callable[[], object]) -> float:
    """Median over rounds of microseconds per call of `run` (which evaluates all five)."""
    times = timeit.repeat(run, number=NUMBER, repeat=ROUNDS)
    return statistics.median(times) / NUMBER / len(EXPRESSIONS) * 1e6


def rust_core() -> Callable[[], object]:
    programs = [cel.compile(e) for e in EXPRESSIONS]
    return lambda: [p.execute(CONTEXT) for p in programs]


def baton_wrapper() -> Callable[[], object]:
    compiled = [compile_expression(e, step=None, field="bench") for e in EXPRESSIONS]
    return lambda: [c.evaluate(CONTEXT) for c in compiled]


def pure_python() -> Callable[[], object]:
    env = celpy.Environment()
    programs = [env.program(env.compile(e)) for e in EXPRESSIONS]
    activation = {k: celpy.json_to_cel(v) for k, v in CONTEXT.items()}
    return lambda: [p.evaluate(activation) for p in programs]


def pure_python_fresh_context() -> Callable[[], object]:
    env = celpy.Environment()
    programs = [env.program(env.compile(e)) for e in EXPRESSIONS]

    def run() -> object:
        activation = {k: celpy.json_to_cel(v) for k, v in CONTEXT.items()}
        return [p.evaluate(activation) for p in programs]

    return run


def main() -> None:
    results = {
        "cel-python (context converted once)": median_us(pure_python()),
        "cel-python (context converted per call)": median_us(pure_python_fresh_context()),
        "common-expression-language": median_us(rust_core()),
        "baton.expr (common-expression-language)": median_us(baton_wrapper()),
    }
    baseline = results["cel-python (context converted once)"]
    print(f"median µs per evaluation over {len(EXPRESSIONS)} expressions, {ROUNDS} rounds")
    print("| library | µs per evaluation | ratio to cel-python |")
    print("|---|---:|---:|")
    for name, micros in results.items():
        print(f"| {name} | {micros:.2f} | {micros / baseline:.3f} |")


if __name__ == "__main__":
    main()
