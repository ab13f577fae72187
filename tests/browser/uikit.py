"""Helpers of the browser tests: `baton ui` as a subprocess, and screenshots in both themes."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


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


def stop_ui(ui: Ui) -> None:
    ui.process.terminate()
    try:
        ui.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        ui.process.kill()


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
