"""On kind: the operator image built from the Dockerfile, `helm install` of charts/baton, and two
example runs to the end — an inline workflow (sleep, set) and a Job step in a real container —
and `helm test`, whose pod runs `baton wait` from the same image."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from conftest import IMAGE, ROOT

JOB_RUN = {
    "apiVersion": "baton.dev/v1alpha1",
    "kind": "WorkflowRun",
    "metadata": {"name": "hello-job"},
    "spec": {
        "workflow": {
            "steps": [
                {
                    "name": "build",
                    "job": {
                        "image": "busybox:1.36",
                        "command": ["sh", "-c"],
                        "args": ['echo \'{"digest": "sha256:e2e"}\' > /dev/termination-log'],
                    },
                }
            ],
            "output": "${{ steps.build.output.digest }}",
        }
    },
}


def run(bin_dir: Path, kubeconfig: Path, *argv: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    program = str(bin_dir / argv[0])
    return subprocess.run(
        [program, *argv[1:]], input=stdin, env=env, capture_output=True, text=True, check=True
    ).stdout


def wait_for_phase(bin_dir: Path, kubeconfig: Path, name: str) -> dict[str, Any]:
    run(
        bin_dir,
        kubeconfig,
        "kubectl",
        "wait",
        f"workflowrun/{name}",
        "--for=jsonpath={.status.finishedAt}",
        "--timeout=300s",
    )
    status: dict[str, Any] = json.loads(
        run(bin_dir, kubeconfig, "kubectl", "get", f"workflowrun/{name}", "-o", "json")
    )["status"]
    return status


def test_helm_install_then_two_examples_run_to_the_end(kind_cluster: Any, bin_dir: Path) -> None:
    kubeconfig = Path(kind_cluster.kubeconfig_path)
    repository, tag = IMAGE.split(":")
    run(
        bin_dir, kubeconfig, "helm", "install", "baton", str(ROOT / "charts" / "baton"),
        "--namespace", "baton-system", "--create-namespace", "--wait", "--timeout", "5m",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never",
    )  # fmt: skip
    run(
        bin_dir, kubeconfig, "kubectl", "-n", "baton-system", "rollout", "status",
        "deployment/baton", "--timeout=300s",
    )  # fmt: skip

    run(bin_dir, kubeconfig, "kubectl", "apply", "-f", str(ROOT / "examples/hello/run.yaml"))
    run(bin_dir, kubeconfig, "kubectl", "apply", "-f", "-", stdin=json.dumps(JOB_RUN))
    hello = wait_for_phase(bin_dir, kubeconfig, "hello")
    assert hello["phase"] == "Succeeded", hello
    assert hello["output"] == "hello Baton"
    job = wait_for_phase(bin_dir, kubeconfig, "hello-job")
    assert job["phase"] == "Succeeded", job
    assert job["output"] == "sha256:e2e"

    # The chart's own smoke test: a pod of the operator image waits for an inline run.
    out = run(
        bin_dir, kubeconfig, "helm", "test", "baton", "--namespace", "baton-system",
        "--logs", "--timeout", "5m",
    )  # fmt: skip
    assert "Phase:          Succeeded" in out, out  # helm test exits non-zero otherwise
