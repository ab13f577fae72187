"""The chart's web view (`ui.enabled`) installed on the local control plane.

What runs for real: helm installs the chart into a namespace that enforces the `restricted` Pod
Security Standard; the API server accepts every object, admits the view's pods (kwok's
simulated nodes then report them running and ready: no container runs), gives them no
ServiceAccount token, and grants the view's ServiceAccount nothing. The view's own process then
serves exactly as the Deployment says, from the rendered kubeconfig (no credentials) and the
namespace's kube-root-ca.crt, here on 127.0.0.1 instead of in the pod: it refuses a request
without a token, and shows each of two ServiceAccounts only the namespace its token may read.

What does not: the image itself in a pod (kwok runs no containers), the Service's traffic to
the pod (no kube-proxy), and the in-cluster address `https://kubernetes.default.svc` (the test
installs with `ui.apiServer` set to the local API server's address).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import yaml
from runkit import run, workflow
from uikit import call, grant_view, start_ui, stop_ui

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "baton"
MOUNTS = "/var/run/baton-ui/"
"""Where the view's pod mounts its kubeconfig and CA (charts/baton/templates/ui.yaml)."""


def get_json(cluster: Any, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return data


def can(cluster: Any, account: str, verb: str, resource: str, *where: str) -> bool:
    result = cluster.kubectl("auth", "can-i", "--as", account, verb, resource, *where, check=False)
    return bool(result.stdout.strip() == "yes")


def test_the_charts_view_has_no_rights_and_serves_each_token_its_own_namespaces(
    crds: Any, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    cluster = crds
    server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    release = f"baton-{secrets.token_hex(2)}"
    cluster.helm(
        "install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "3m",
        "--set", "ui.enabled=true", "--set", f"ui.apiServer={server}",
        "--set", f"ui.namespaces={{{namespace},{other_namespace}}}",
        "--set", "replicas=1", "--set", "standalone=true", "--set", "test.enabled=false",
    )  # fmt: skip
    name = f"{release}-ui"
    try:
        # Accepted, and its pods admitted under `restricted` and ready (kwok's simulation).
        cluster.kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=90s")
        (pod,) = get_json(cluster, "pods", "-n", namespace, "-l", "app.kubernetes.io/component=ui")[
            "items"
        ]
        assert pod["spec"]["serviceAccountName"] == name
        # No token: the ServiceAccount admission adds no kube-api-access volume.
        assert not [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access")]
        account = f"system:serviceaccount:{namespace}:{name}"
        assert not can(cluster, account, "list", "workflowruns.baton.dev", "-A")
        assert not can(cluster, account, "get", "workflowruns.baton.dev", "-n", namespace)
        assert not can(cluster, account, "get", "pods", "-n", namespace)
        assert not can(cluster, account, "create", "tokenreviews.authentication.k8s.io")

        # The view's process as the Deployment runs it, with what its pod mounts.
        kubeconfig = get_json(cluster, "configmap", "-n", namespace, f"{name}-kubeconfig")
        root_ca = get_json(cluster, "configmap", "-n", namespace, "kube-root-ca.crt")
        (tmp_path / "ca").mkdir()
        (tmp_path / "ca" / "ca.crt").write_text(root_ca["data"]["ca.crt"])
        (tmp_path / "kubeconfig").mkdir()
        text = kubeconfig["data"]["kubeconfig"].replace(MOUNTS, f"{tmp_path}/")
        (tmp_path / "kubeconfig" / "kubeconfig").write_text(text)
        deployment = get_json(cluster, "deployment", "-n", namespace, name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["baton", "ui"]
        args = [
            a.replace(MOUNTS, f"{tmp_path}/")
            for a in container["args"]
            if not a.startswith(("--address=", "--port="))  # here: 127.0.0.1, any port
        ]
        env = {k: v for k, v in cluster.env.items() if k != "KUBECONFIG"}
        cluster.apply(
            [workflow("w", [{"name": "s", "set": {"x": 1}}]), run("mine", "w")], namespace
        )
        cluster.apply(
            [workflow("w", [{"name": "s", "set": {"x": 1}}]), run("theirs", "w")], other_namespace
        )
        mine = grant_view(cluster, namespace, "reader-a")
        theirs = grant_view(cluster, other_namespace, "reader-b")
        ui = start_ui(env, *args)
        try:
            status, body = call(ui, "api/runs")
            assert status == 401
            assert "bearer token" in body["error"]
            status, body = call(ui, "api/runs", mine)
            assert status == 200
            assert [(r["namespace"], r["name"]) for r in body["items"]] == [(namespace, "mine")]
            status, body = call(ui, "api/runs", theirs)
            assert [(r["namespace"], r["name"]) for r in body["items"]] == [
                (other_namespace, "theirs")
            ]
        finally:
            stop_ui(ui)
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m")
