"""Fixtures for the web view's browser tests (see docs/testing.md, "Browser tests").

The control plane, namespaces, operator, recorder and runs are the integration tests' own
fixtures (tests/integration/clusterkit.py, registered once by tests/conftest.py: one control
plane for the whole session). On top of them:

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

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from uikit import Ui, start_ui, stop_ui

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 900}
"""A laptop screen."""


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


@pytest.fixture
def other_namespace(crds: Any) -> Iterator[str]:
    """A second fresh namespace, for what a token of the test's namespace may not read."""
    core = client.CoreV1Api(crds.api_client)
    name = f"token-other-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")
