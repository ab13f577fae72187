"""Tests against a real Kubernetes control plane (see docs/testing.md).

Their fixtures (``cluster``, ``crds``, ``namespace``, ``recorder``, ``operator``, ``runs``) live
in clusterkit.py, registered once for the whole session by tests/conftest.py so that the browser
tests share them; its types are named here too, for the tests' ``from clusterkit import Runs``.

Every test in tests/integration is marked ``integration``: ``pytest -m "not integration"``
leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
