"""Tests against a real Kubernetes control plane (see docs/testing.md).

Their fixtures (``cluster``, ``crds``, ``namespace``, ``recorder``, ``operator``, ``runs``) live
in clusterkit.py, registered once for the whole session by tests/conftest.py so that the browser
tests share them; its types are named here too, for the tests' ``from clusterkit import Runs``.

Every test in tests/integration is marked ``integration``: ``pytest -m "not integration"``
leaves them out. ``make_lives``, here, makes the operator processes of crash tests
(crashkit.Lives) that several files kill and start again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import Cluster
from crashkit import Lives, LivesFactory
from operator_process import OperatorProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def make_lives(crds: Cluster, namespace: str, tmp_path: Path) -> Iterator[LivesFactory]:
    """Lives of an operator for the test's namespace (Kubernetes Events off, logging at INFO),
    with `extra` arguments; not started yet. Stopped after the test."""
    made: list[Lives] = []

    def make(*extra: str) -> Lives:
        process = OperatorProcess(
            crds.env,
            tmp_path / f"operator-{len(made)}.log",
            "--namespace",
            namespace,
            "--no-kube-events",
            *extra,
            verbose=False,
        )
        made.append(Lives(process))
        return made[-1]

    yield make
    for lives in made:
        lives.process.stop()
