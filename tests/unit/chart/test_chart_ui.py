"""charts/baton with `ui.enabled`: the web view deployed with no rights of its own, acting with
each caller's bearer token (`baton ui --auth token`), behind its own Service."""

from __future__ import annotations

from typing import Any

import yaml
from chartkit import Helm, by_kind

UI = "baton-ui"
"""The view's objects' name for release `baton` (the chart's full name, then `-ui`)."""


def ui_objects(helm: Helm, *values: str, **sets: str) -> list[dict[str, Any]]:
    return [
        o
        for o in helm.template(*values, ui__enabled="true", **sets)
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "ui"
    ]


def named(objects: list[dict[str, Any]], kind: str, name: str = UI) -> dict[str, Any]:
    (found,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def ui_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (main,) = named(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = main
    return result


def test_the_view_is_off_by_default(helm: Helm) -> None:
    objects = helm.template()
    labels = [(o["metadata"].get("labels") or {}) for o in objects]
    assert not [label for label in labels if label.get("app.kubernetes.io/component") == "ui"]
    assert not [o for o in objects if o["metadata"]["name"].endswith("-ui")]


def test_the_view_serves_in_token_mode_on_all_addresses(helm: Helm) -> None:
    main = ui_container(ui_objects(helm))
    assert main["command"] == ["baton", "ui"]
    assert "--auth=token" in main["args"]
    assert "--address=0.0.0.0" in main["args"]
    assert "--port=8080" in main["args"]
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_the_view_has_no_rights_and_mounts_no_token(helm: Helm) -> None:
    everything = helm.template(ui__enabled="true")
    objects = ui_objects(helm)
    account = named(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    pod = named(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == UI
    assert pod["automountServiceAccountToken"] is False
    bindings = by_kind(everything, "RoleBinding") + by_kind(everything, "ClusterRoleBinding")
    subjects = [s for b in bindings for s in b.get("subjects") or []]
    assert subjects, "the operator's bindings are rendered"
    assert UI not in [s["name"] for s in subjects]


def test_the_views_kubeconfig_names_the_server_and_its_ca_but_no_credentials(
    helm: Helm,
) -> None:
    objects = ui_objects(helm, ui__apiServer="https://api.example:6443")
    kubeconfig = yaml.safe_load(
        named(objects, "ConfigMap", f"{UI}-kubeconfig")["data"]["kubeconfig"]
    )
    (cluster,) = kubeconfig["clusters"]
    assert cluster["cluster"]["server"] == "https://api.example:6443"
    (user,) = kubeconfig["users"]
    assert user["user"] == {}
    (context,) = kubeconfig["contexts"]
    assert context["context"]["namespace"] == "baton-system"
    # The CA file is the namespace's kube-root-ca.crt, mounted where the kubeconfig says.
    pod = named(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in ui_container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ca"]["configMap"]["name"] == "kube-root-ca.crt"
    assert cluster["cluster"]["certificate-authority"] == f"{mounts['ca']}/ca.crt"
    assert volumes["kubeconfig"]["configMap"]["name"] == f"{UI}-kubeconfig"
    assert f"--kubeconfig={mounts['kubeconfig']}/kubeconfig" in ui_container(objects)["args"]


def test_the_views_pod_is_restricted(helm: Helm) -> None:
    objects = ui_objects(helm)
    pod = named(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ui_container(objects)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert ui_container(objects)["resources"]["limits"]["memory"]
    assert not [v for v in pod["volumes"] if "hostPath" in v]


def test_the_views_service_selects_its_pods_and_the_operators_do_not(helm: Helm) -> None:
    everything = helm.template(ui__enabled="true")
    objects = ui_objects(helm)
    service = named(objects, "Service")
    pod_labels = named(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    operator_selectors = [
        o["spec"]["selector"]
        for o in by_kind(everything, "Service") + by_kind(everything, "PodDisruptionBudget")
        if o["metadata"]["name"] != UI
    ]
    assert operator_selectors
    for selector in operator_selectors:
        labels = selector.get("matchLabels", selector)
        assert not labels.items() <= pod_labels.items(), selector


def test_the_view_shows_the_watched_namespaces_else_the_releases(helm: Helm) -> None:
    def namespaces(*values: str) -> list[str]:
        args = ui_container(ui_objects(helm, *values))["args"]
        return [a.removeprefix("--namespaces=") for a in args if a.startswith("--namespaces=")]

    assert namespaces() == ["baton-system"]
    assert namespaces("--set", "watchNamespaces={a,b}") == ["a,b"]
    assert namespaces("--set", "watchNamespaces={a,b}", "--set", "ui.namespaces={c}") == ["c"]


def test_bad_ui_values_are_refused_with_a_clear_message(helm: Helm) -> None:
    assert "/ui" in helm.refused("--set", "ui.enable=true")
    assert "/ui/apiServer" in helm.refused("--set", "ui.apiServer=kubernetes.default.svc")
    assert "/ui/service/type" in helm.refused("--set", "ui.service.type=Ingress")
    assert "/ui/metricsUrl" in helm.refused("--set", "ui.metricsUrl=baton-metrics:9090")


def test_the_view_reads_the_releases_metrics_unless_told_otherwise(helm: Helm) -> None:
    def metrics_urls(*values: str) -> list[str]:
        args = ui_container(ui_objects(helm, *values))["args"]
        return [a.removeprefix("--metrics-url=") for a in args if a.startswith("--metrics-url=")]

    assert metrics_urls() == ["http://baton-metrics.baton-system.svc:9090/metrics"]
    assert metrics_urls("--set", "ui.metricsUrl=http://prom.example/m") == ["http://prom.example/m"]
    assert metrics_urls("--set", "metrics.enabled=false") == []
