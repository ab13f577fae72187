"""Helpers of the browser tests: `baton ui` as a subprocess, and screenshots in both themes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


LIVE = 60_000
"""How long the page may take to show a change the operator made (ms): a busy shared machine."""


@dataclass
class Ui:
    """A running ``baton ui``."""

    url: str
    process: subprocess.Popen[str]


def start_ui(env: dict[str, str], *args: str, timeout: float = 120.0) -> Ui:
    """``baton ui --port 0 ARGS`` in the background, once it says where it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "baton.cli.main", "ui", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("baton ui: serving "):
            return Ui(line.split()[3], process)
    process.kill()
    raise AssertionError(f"baton ui did not start: {''.join(lines)}")


def open_run(page: Page, ui: Ui, namespace: str, name: str, query: str = "") -> None:
    """Open the page of run `name`, once it shows the run."""
    page.goto(f"{ui.url}runs/{namespace}/{name}{query}")
    expect(page.get_by_test_id("run-name")).to_have_text(name)


def stop_ui(ui: Ui) -> None:
    ui.process.terminate()
    try:
        ui.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        ui.process.kill()


def call(ui: Ui, path: str, token: str | None = None, method: str = "GET") -> tuple[int, Any]:
    """The view's JSON API at `path`, with `token` as the bearer token: (status, body)."""
    request = urllib.request.Request(
        f"{ui.url}{path}", method=method, data=b"{}" if method == "POST" else None
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def shoot(page: Any, name: str) -> None:
    """Save the page in the light and the dark theme as test artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    for theme in ("light", "dark"):
        page.evaluate(
            "theme => { localStorage.setItem('baton-theme', theme);"
            " document.documentElement.dataset.theme = theme; }",
            theme,
        )
        page.wait_for_timeout(100)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{theme}.png"), full_page=True)


def grant_view(cluster: Any, namespace: str, account: str) -> str:
    """A token of a new ServiceAccount `account` that may read (`view`, and Baton's resources)
    in `namespace` only."""
    cluster.kubectl("create", "serviceaccount", account, "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", f"{account}-view", "-n", namespace,
        "--clusterrole", "view", f"--serviceaccount={namespace}:{account}",
    )  # fmt: skip
    # The chart's aggregated roles are not installed here: grant reading Baton's resources.
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": f"{account}-baton", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["baton.dev"],
                    "resources": ["workflows", "workflowruns", "workerpools"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        }
    )
    cluster.kubectl(
        "create", "rolebinding", f"{account}-baton", "-n", namespace,
        "--role", f"{account}-baton", f"--serviceaccount={namespace}:{account}",
    )  # fmt: skip
    return str(cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip())
