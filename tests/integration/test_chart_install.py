"""charts/baton on the local control plane: helm install, upgrade and uninstall for real, and
the RBAC proof — the operator, run with the chart's ServiceAccount token instead of admin, runs
an HTTP step and a Job step, and is refused what the chart does not grant."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Cluster, Runs
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import kwok

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "baton"
CRDS = ("workflows.baton.dev", "workflowruns.baton.dev", "workerpools.baton.dev")
RELEASE_KINDS = "deployment,serviceaccount,service,poddisruptionbudget,role,rolebinding,configmap"
CLUSTER_KINDS = "clusterrole,clusterrolebinding,clusterkopfpeering"


def get_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return data


def existing_crds(cluster: Cluster) -> set[str]:
    out = cluster.kubectl("get", "crd", "-o", "jsonpath={.items[*].metadata.name}").stdout
    return set(out.split()) & set(CRDS)


def rollout(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    cluster.kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=90s")
    return get_json(cluster, "deployment", "-n", namespace, name)


def test_helm_install_upgrade_and_uninstall(cluster: Cluster, namespace: str) -> None:
    release = f"baton-{secrets.token_hex(2)}"
    crds_before = existing_crds(cluster)
    out = cluster.helm(
        "install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "2m"
    ).stdout
    assert f"kubectl -n {namespace} rollout status deployment/{release}" in out  # NOTES
    # crds/ is installed first (and left alone when the CRDs exist, e.g. from `make dev`).
    assert existing_crds(cluster) == set(CRDS), f"CRDs before: {crds_before}"
    cluster.kubectl(
        "wait", "--for", "condition=Established", "--timeout=60s", *(f"crd/{name}" for name in CRDS)
    )
    deployment = rollout(cluster, namespace, release)
    assert deployment["status"]["readyReplicas"] == 2
    get_json(cluster, "clusterkopfpeering", release)
    account = f"system:serviceaccount:{namespace}:{release}"

    def can(verb: str, resource: str, *where: str) -> bool:
        result = cluster.kubectl(
            "auth", "can-i", "--as", account, verb, resource, *where, check=False
        )
        return result.stdout.strip() == "yes"

    assert can("watch", "workflowruns.baton.dev", "-A")
    assert can("patch", "workflowruns.baton.dev/status", "-n", "default")
    assert can("create", "jobs.batch", "-n", "default")
    assert can("get", "secrets", "-n", "default")
    assert not can("list", "secrets", "-n", "default")
    assert not can("delete", "configmaps", "-n", "default")
    assert not can("delete", "deployments.apps", "-n", "default")
    assert not can("delete", "workflows.baton.dev", "-n", "default")

    # An upgrade that changes the pod template rolls the Deployment: a new ReplicaSet.
    cluster.helm(
        "upgrade",
        release,
        str(CHART),
        "-n",
        namespace,
        "--reuse-values",
        "--set",
        "replicas=3",
        "--set",
        "operator.verbose=true",
        "--wait",
        "--timeout",
        "2m",
    )
    deployment = rollout(cluster, namespace, release)
    assert deployment["metadata"]["generation"] >= 2
    assert deployment["status"]["readyReplicas"] == 3
    assert deployment["status"]["updatedReplicas"] == 3
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--verbose" in args
    replica_sets = get_json(
        cluster, "replicaset", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}"
    )["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, 3]

    cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m")
    selector = f"app.kubernetes.io/instance={release}"
    left = cluster.kubectl("get", RELEASE_KINDS, "-n", namespace, "-l", selector, "-o", "name")
    assert left.stdout.strip() == ""
    left = cluster.kubectl("get", CLUSTER_KINDS, "-l", selector, "-o", "name")
    assert left.stdout.strip() == ""
    assert existing_crds(cluster) == set(CRDS), "helm uninstall keeps the CRDs (and the runs)"


def service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig for `account` with a token from the TokenRequest API (no admin rights)."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration", "1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "sa",
                        "context": {"cluster": "c", "user": account, "namespace": namespace},
                    }
                ],
                "current-context": "sa",
            }
        )
    )
    return path


@pytest.fixture
def chart_operator(
    crds: Cluster, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, Path]]:
    """The chart installed in namespaced mode for the test's namespace, and `baton operator` run
    out of cluster with its ServiceAccount's token, in the chart's peering (not standalone)."""
    release = f"baton-{secrets.token_hex(2)}"
    crds.helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--wait",
        "--timeout",
        "2m",
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        "replicas=1",
    )
    kubeconfig = service_account_kubeconfig(crds, namespace, release, tmp_path / "sa.yaml")
    env = {**crds.env, "KUBECONFIG": str(kubeconfig)}
    # As the chart runs it: in the chart's peering, `--priority auto`.
    process = OperatorProcess(
        env,
        tmp_path / "operator.log",
        "--peering",
        release,
        "--priority",
        "auto",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        standalone=False,
    )
    process.start()
    yield process, kubeconfig
    process.stop()
    crds.helm("uninstall", release, "-n", namespace, "--wait", check=False)


def test_the_charts_service_account_is_enough_for_runs_and_no_more(
    runs: Runs, recorder: Recorder, chart_operator: tuple[OperatorProcess, Path], crds: Cluster
) -> None:
    process, kubeconfig = chart_operator
    runs.apply(
        [
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "Workflow",
                "metadata": {"name": "smoke"},
                "spec": {
                    "steps": [
                        {"name": "call", "http": {"method": "POST", "url": f"{recorder.url}/c"}},
                        {
                            "name": "build",
                            "job": {
                                "image": "registry.example/builder:1",
                                "podAnnotations": kwok(message={"digest": "sha256:1"}),
                            },
                        },
                    ]
                },
            },
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "WorkflowRun",
                "metadata": {"name": "smoke-1"},
                "spec": {"workflowRef": {"name": "smoke"}},
            },
        ]
    )
    status = runs.wait("smoke-1", timeout=90)
    assert status["phase"] == "Succeeded", f"{status}\n{process.log_tail(80)}"
    assert status["steps"]["build"]["output"] == {"digest": "sha256:1"}
    assert recorder.calls_to("/c")
    workflow = runs.api.get_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflows", "smoke"
    )
    assert any(c["type"] == "Ready" for c in workflow["status"]["conditions"])
    events = crds.kubectl(
        "get",
        "events",
        "-n",
        runs.namespace,
        "--field-selector",
        "involvedObject.name=smoke-1",
        "-o",
        "name",
    ).stdout.split()
    assert events, "the operator posts Kubernetes Events with its own rights"
    time.sleep(0.5)
    log = process.log_path.read_text()
    assert "Forbidden" not in log, process.log_tail(80)

    # Outside its rights: refused by the API server.
    as_operator = {**crds.env, "KUBECONFIG": str(kubeconfig)}
    for args in (
        ("get", "secrets", "-n", runs.namespace),
        ("get", "workflowruns", "-n", "default"),
        ("delete", "workflow", "smoke", "-n", runs.namespace),
        ("delete", "deployment", "x", "-n", runs.namespace),
    ):
        result = subprocess.run(
            [str(crds.bin_dir / "kubectl"), *args],
            env=as_operator,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0, args
        assert "Forbidden" in result.stderr or "forbidden" in result.stderr, result.stderr


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.5)


def test_view_users_read_edit_users_run_and_signal_admin_users_manage_pools(
    crds: Cluster, namespace: str
) -> None:
    """The chart's aggregated ClusterRoles, through Kubernetes' own view, edit and admin roles
    bound in one namespace (the controller-manager aggregates them), as `kubectl --as`."""
    release = f"baton-{secrets.token_hex(2)}"
    crds.helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        "replicas=1",
    )
    for user, role in (("vera", "view"), ("eddie", "edit"), ("ada", "admin")):
        crds.kubectl(
            "create",
            "rolebinding",
            user,
            f"--clusterrole={role}",
            f"--user={user}",
            "-n",
            namespace,
        )

    def can(user: str, verb: str, resource: str, *more: str) -> bool:
        result = crds.kubectl(
            "auth", "can-i", "--as", user, verb, resource, "-n", namespace, *more, check=False
        )
        return result.stdout.strip() == "yes"

    wait_until(
        "the controller-manager aggregates the chart's roles",
        lambda: (
            can("vera", "list", "workflowruns.baton.dev")
            and can("eddie", "create", "workflowruns.baton.dev")
            and can("ada", "create", "workerpools.baton.dev")
        ),
    )
    for kind in ("workflows", "workflowruns", "workerpools"):
        for verb in ("get", "list", "watch"):
            assert can("vera", verb, f"{kind}.baton.dev"), (verb, kind)
        assert not can("vera", "create", f"{kind}.baton.dev"), kind
        assert not can("vera", "patch", f"{kind}.baton.dev"), kind
    for kind in ("workflows", "workflowruns"):
        for verb in ("create", "patch", "delete"):
            assert can("eddie", verb, f"{kind}.baton.dev"), (verb, kind)
    assert not can("eddie", "create", "workerpools.baton.dev")
    assert can("ada", "delete", "workerpools.baton.dev")
    for user in ("vera", "eddie", "ada"):
        assert not can(user, "patch", "workflowruns.baton.dev", "--subresource=status"), user
    assert not can("eddie", "list", "workflowruns.baton.dev", "-n", "default")

    # What users do: edit creates a run and signals it with the README's patch; view reads it.
    run = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "by-eddie", "namespace": namespace},
        "spec": {
            "workflow": {"steps": [{"name": "ok", "waitForSignal": {"name": "ok"}}]},
            "signals": [],
        },
    }
    crds.kubectl("--as", "eddie", "create", "-f", "-", input=json.dumps(run))
    signal = '[{"op":"add","path":"/spec/signals/-","value":{"name":"ok","payload":{"ok":true}}}]'
    crds.kubectl(
        "--as", "eddie", "patch", "workflowrun", "by-eddie", "-n", namespace,
        "--type", "json", "-p", signal,
    )  # fmt: skip
    seen = crds.kubectl(
        "--as", "vera", "get", "bwfr", "by-eddie", "-n", namespace,
        "-o", "jsonpath={.spec.signals[0].name}",
    ).stdout  # fmt: skip
    assert seen == "ok"
    refused = crds.kubectl(
        "--as", "vera", "patch", "workflowrun", "by-eddie", "-n", namespace,
        "--type", "json", "-p", signal, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower(), refused.stderr

    crds.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m")
    wait_until(
        "view loses Baton's rights with the release",
        lambda: not can("vera", "list", "workflowruns.baton.dev"),
    )


@pytest.mark.timeout(600)  # helm test alone may take 180 s
def test_the_helm_test_run_succeeds_and_its_account_reads_only_that_run(
    crds: Cluster, runs: Runs, chart_operator: tuple[OperatorProcess, Path], tmp_path: Path
) -> None:
    """`helm test` for real, up to the pod: helm creates the hooks (the account, its Role, the
    WorkflowRun, the pod) and the operator, running with the chart's own account, drives the
    run. kwok's simulated nodes never run the pod's container (only Job pods end there), so
    the pod's command runs here instead, with a token of the pod's own ServiceAccount, and
    helm, left waiting for a pod that never ends, is stopped."""
    process, _ = chart_operator
    release = process.args[process.args.index("--peering") + 1]
    namespace = runs.namespace
    helm_test = subprocess.Popen(
        [str(crds.bin_dir / "helm"), "test", release, "-n", namespace, "--timeout", "3m"],
        env=crds.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pod_name = f"{release}-test"
        wait_until(
            "helm test creates its pod",
            lambda: (
                crds.kubectl("get", "pod", pod_name, "-n", namespace, check=False).returncode == 0
            ),
            timeout=90,
        )
        pod = get_json(crds, "pod", pod_name, "-n", namespace)
        created = {
            kind: crds.kubectl("get", kind, pod_name, "-n", namespace, check=False).returncode
            for kind in ("serviceaccount", "role", "rolebinding", "workflowrun")
        }
        assert created == dict.fromkeys(created, 0), created
    finally:
        helm_test.terminate()
        helm_test.wait(timeout=30)
    account = pod["spec"]["serviceAccountName"]
    kubeconfig = service_account_kubeconfig(crds, namespace, account, tmp_path / "test.yaml")
    (main,) = pod["spec"]["containers"]
    assert main["command"] == ["baton"]
    result = subprocess.run(
        [sys.executable, "-m", "baton.cli.main", *main["args"]],
        env={**crds.env, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{process.log_tail(60)}"
    assert "Succeeded" in result.stdout, result.stdout
    run = runs.get(main["args"][1])
    assert run["status"]["output"] == f"hello from {release}"

    tester = f"system:serviceaccount:{namespace}:{account}"

    def can(verb: str, resource: str) -> bool:
        result = crds.kubectl(
            "auth", "can-i", "--as", tester, verb, resource, "-n", namespace, check=False
        )
        return result.stdout.strip() == "yes"

    assert can("get", f"workflowruns.baton.dev/{main['args'][1]}")
    assert not can("get", "workflowruns.baton.dev/another")
    assert not can("list", "workflowruns.baton.dev")
    assert not can("create", "workflowruns.baton.dev")
    assert not can("get", "secrets")
