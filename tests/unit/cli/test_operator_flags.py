"""`baton operator` flags of the chart: --priority auto and --metrics-port."""

from __future__ import annotations

import argparse

import pytest

from baton.cli import operator


def parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    operator.register(parser.add_subparsers())
    return parser.parse_args(["operator", *args])


def test_auto_priorities_grow_with_the_start_time() -> None:
    earlier = [operator.auto_priority(1_800_000_000.000) for _ in range(50)]
    later = [operator.auto_priority(1_800_000_000.001) for _ in range(50)]
    assert max(earlier) < min(later)
    assert operator.auto_priority(4_000_000_000.0) < 2**53  # exact as JSON numbers


def test_priority_is_an_integer_or_auto() -> None:
    assert parse("--priority", "auto").priority == "auto"
    assert parse("--priority", "7").priority == 7
    with pytest.raises(SystemExit):
        parse("--priority", "high")


def test_metrics_port_defaults_to_9090_and_0_disables() -> None:
    assert parse().metrics_port == 9090
    assert parse("--metrics-port", "0").metrics_port == 0
