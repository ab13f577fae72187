"""Fixtures for the web view's browser tests (see docs/testing.md, "Browser tests").

The control plane, namespaces, operator, recorder and runs are the integration tests' own
fixtures (tests/integration/conftest.py), loaded here rather than copied. On top of them:

- ``ui`` (session): ``baton ui --port 0`` as a subprocess with the cluster's admin kubeconfig,
  its address read from the line it prints; stopped at the end.
- ``browser`` (session): headless Chromium from the distribution's package (/usr/bin/chromium,
  installed by .ci/run), driven by Playwright; no browser is downloaded. Without it every
  browser test is skipped, saying how to install it.
- ``page`` (function): a fresh page at a laptop's size; ``shoot(page, name)`` saves it as
  ``artifacts/<name>-light.png`` and ``-dark.png`` (artifacts/ is ignored by git); it and
  ``start_ui`` live in uikit.py.

Every test here is marked ``browser``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 900}
"""A laptop screen."""

sys.path.insert(0, str(INTEGRATION))
from uikit import Ui, start_ui, stop_ui  # noqa: E402 (after the path it is found on)

_spec = importlib.util.spec_from_file_location("integration_fixtures", INTEGRATION / "conftest.py")
assert _spec is not None
assert _spec.loader is not None
fixtures = importlib.util.module_from_spec(_spec)
sys.modules["integration_fixtures"] = fixtures
_spec.loader.exec_module(fixtures)

cluster = fixtures.cluster
crds = fixtures.crds
namespace = fixtures.namespace
recorder = fixtures.recorder
operator = fixtures.operator
runs = fixtures.runs
pytest_runtest_makereport = fixtures.pytest_runtest_makereport
Cluster = fixtures.Cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser ``browser``."""
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def ui(crds: Any) -> Iterator[Ui]:
    """`baton ui` with the cluster's admin kubeconfig."""
    running = start_ui(crds.env)
    yield running
    stop_ui(running)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium from the distribution's package, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: apt-get install -y chromium (what .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own storage: light theme unless a test asks for dark)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"
