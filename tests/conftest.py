"""What every test session shares: unit tests run first, and each test has a time limit.

The order is the README's: unit tests, then integration tests (they start a control plane), then
the end-to-end ones. pytest would otherwise run the folders alphabetically, e2e and integration
before unit, so a broken engine would surface only after minutes of cluster tests.

The per-test time limit (pytest-timeout) turns a hang into a failure named after its test instead
of a CI job that runs out of time: `timeout` in pyproject.toml is the default of every test
(integration tests: cluster start-up in the first test's setup included), a unit test gets
UNIT_TIMEOUT unless it says otherwise, and a test that is slow on purpose raises its own limit
with `@pytest.mark.timeout(seconds)`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent

LAYERS = ("unit", "integration", "e2e")
"""Test folders in the order a session runs them; a folder not listed runs after these."""

UNIT_TIMEOUT = 60
"""Seconds a unit test may take: they are pure and in-process, the slowest about 8 s on a busy
2-core machine, so a minute is a hang."""


def _layer(item: pytest.Item) -> str:
    try:
        return Path(item.path).relative_to(TESTS).parts[0]
    except ValueError:  # a test outside tests/ (a path given on the command line)
        return ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the layers in LAYERS order, each in its collected order; time-limit unit tests."""
    rank = {layer: position for position, layer in enumerate(LAYERS)}
    items.sort(key=lambda item: rank.get(_layer(item), len(LAYERS)))
    for item in items:
        if _layer(item) == "unit" and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT))
