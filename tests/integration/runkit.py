"""Helpers of the operator's integration tests (tests/integration/test_run_*.py): manifests of
Workflows, runs and WorkerPools, the run's event history, and per-attempt steering of the pods
kwok simulates.

Per-attempt pod annotations. A Job step's pod terminates as its `kwok.baton.dev/*` annotations
say (docs/testing.md), but a Workflow cannot set pod annotations: the JobAction has no such
field, and the Job executor only copies a `podAnnotations` map it is handed in a command. What
the executor does put on every pod is the attempt's identity (`baton.dev/activity-key`,
`baton.dev/attempt`). `kwok_pods` installs a MutatingAdmissionPolicy — the API server's own CEL
mutation, GA in Kubernetes 1.36 — bound to the test's namespace, which adds the wanted
annotations to the pods of one activity key and attempt as they are created. So attempt 1 can
fail while attempt 2 succeeds, with nothing in the operator made for tests.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clusterkit import Cluster

API = "baton.dev/v1alpha1"
VENV_BIN = Path(sys.executable).parent
"""Where `uv sync` installed the `baton` console script."""
README = Path(__file__).parents[2] / "README.md"


def workflow(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Workflow manifest."""
    return {"apiVersion": API, "kind": "Workflow", "metadata": {"name": name},
            "spec": {"steps": steps, **spec}}  # fmt: skip


def run(name: str, workflow_name: str, run_input: Any = None, **spec: Any) -> dict[str, Any]:
    """A WorkflowRun manifest of `workflow_name`."""
    return {
        "apiVersion": API,
        "kind": "WorkflowRun",
        "metadata": {"name": name},
        "spec": {"workflowRef": {"name": workflow_name}, "input": run_input, **spec},
    }


def worker_pool(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    """A WorkerPool whose workers live outside the cluster, at `endpoint`; `spec` adds fields
    (an `image` makes Baton create and scale its Deployment too)."""
    return {"apiVersion": API, "kind": "WorkerPool", "metadata": {"name": name},
            "spec": {"endpoint": endpoint, **spec}}  # fmt: skip


def http(url: str, method: str = "POST", **action: Any) -> dict[str, Any]:
    """An http action."""
    return {"method": method, "url": url, **action}


FAST_RETRY = {"initialInterval": "200ms", "backoffCoefficient": 2, "maxInterval": "1s"}
"""Retry timing short enough for tests; add `maxAttempts`."""


def baton(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `baton` CLI as a user would, against the test cluster."""
    result = subprocess.run(
        [str(VENV_BIN / "baton"), *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"baton {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def history(cluster: Cluster, namespace: str, run_name: str) -> list[dict[str, Any]]:
    """The run's events as `baton history --json` prints them."""
    events: list[dict[str, Any]] = json.loads(
        baton(cluster, "history", run_name, "--json", "-n", namespace).stdout
    )
    return events


def send_signal(
    cluster: Cluster, namespace: str, run_name: str, name: str, payload: Any = None
) -> None:
    """Append a signal to the run with the JSON patch of the README."""
    signal: dict[str, Any] = {"name": name}
    if payload is not None:
        signal["payload"] = payload
    patch = [{"op": "add", "path": "/spec/signals/-", "value": signal}]
    cluster.kubectl(
        "patch", "workflowrun", run_name, "-n", namespace, "--type", "json",
        "-p", json.dumps(patch),
    )  # fmt: skip


def readme_command(start: str) -> list[str]:
    """The README's shell command beginning with `start` (continuation lines joined), split
    as the shell would split it: tests run what users copy."""
    text = README.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith(start))
    return shlex.split(line)


def jsonpath(cluster: Cluster, namespace: str, kind: str, name: str, path: str) -> str:
    """`kubectl get <kind> <name> -o jsonpath=<path>`."""
    return cluster.kubectl(
        "get", kind, name, "-n", namespace, "-o", f"jsonpath={path}"
    ).stdout.strip()


def wait_created(cluster: Cluster, namespace: str, kind: str, name: str) -> None:
    """`kubectl wait --for=create`: the object exists."""
    cluster.kubectl("wait", "-n", namespace, "--for=create", f"{kind}/{name}", "--timeout=30s")


def wait_until(what: str, check: Any, timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


@dataclass(frozen=True)
class PodRule:
    """Annotations for the pod of activity `key` at `attempt` (every attempt when None)."""

    key: str
    annotations: Mapping[str, str]
    attempt: int | None = None


def kwok(
    exit_code: int | None = None, message: Any = None, duration: str | None = None
) -> dict[str, str]:
    """kwok's pod annotations (docs/testing.md, "How simulated pods behave")."""
    annotations: dict[str, str] = {}
    if exit_code is not None:
        annotations["kwok.baton.dev/exit-code"] = str(exit_code)
    if message is not None:
        text = message if isinstance(message, str) else json.dumps(message)
        annotations["kwok.baton.dev/termination-message"] = text
    if duration is not None:
        annotations["kwok.baton.dev/duration"] = duration
    return annotations


def _cel(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a CEL string literal


def _policy(name: str, namespace: str, rule: PodRule) -> list[dict[str, Any]]:
    wanted = {"baton.dev/activity-key": rule.key}
    if rule.attempt is not None:
        wanted["baton.dev/attempt"] = str(rule.attempt)
    condition = " && ".join(
        ["has(object.metadata.annotations)"]
        + [
            f"{_cel(k)} in object.metadata.annotations && "
            f"object.metadata.annotations[{_cel(k)}] == {_cel(v)}"
            for k, v in wanted.items()
        ]
    )
    entries = ", ".join(f"{_cel(k)}: {_cel(v)}" for k, v in rule.annotations.items())
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ]
                },
                "matchConditions": [{"name": "attempt", "expression": condition}],
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "mutations": [
                    {
                        "patchType": "ApplyConfiguration",
                        "applyConfiguration": {
                            "expression": "Object{metadata: Object.metadata{annotations: "
                            f"{{{entries}}}}}}}"
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    ]


def _probe(namespace: str, rule: PodRule) -> dict[str, Any]:
    annotations = {"baton.dev/activity-key": rule.key}
    if rule.attempt is not None:
        annotations["baton.dev/attempt"] = str(rule.attempt)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace, "annotations": annotations},
        "spec": {"containers": [{"name": "main", "image": "probe"}]},
    }


@contextmanager
def kwok_pods(cluster: Cluster, namespace: str, *rules: PodRule) -> Iterator[None]:
    """Make the API server annotate the pods of the given attempts (see the module doc); the
    policies are active when this enters (checked with a server-side dry run) and removed when
    it exits."""
    names = [f"{namespace}-{i}" for i in range(len(rules))]
    manifests = [
        m for name, rule in zip(names, rules, strict=True) for m in _policy(name, namespace, rule)
    ]
    cluster.apply(manifests)
    try:
        for rule in rules:
            probe = json.dumps(_probe(namespace, rule))

            def mutated(rule: PodRule = rule, probe: str = probe) -> bool:
                result = cluster.kubectl(
                    "create", "--dry-run=server", "-o", "json", "-f", "-", input=probe
                )
                got = json.loads(result.stdout)["metadata"].get("annotations") or {}
                return all(got.get(k) == v for k, v in rule.annotations.items())

            wait_until(f"pod policy for {rule.key} active", mutated)
        yield
    finally:
        for name in names:
            cluster.kubectl(
                "delete", "mutatingadmissionpolicybinding,mutatingadmissionpolicy", name,
                "--ignore-not-found", "--wait=false", check=False,
            )  # fmt: skip
