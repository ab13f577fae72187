"""charts/baton: helm lint, rendered objects, values refused by the schema, CRDs in sync."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import (
    CHART,
    ROOT,
    Helm,
    aggregated,
    by_kind,
    go_available,
    one,
    operator_role,
)

from baton.api.crd import crd_files
from baton.api.run import WorkflowRunSpec
from baton.api.workflow import WorkflowSpec
from baton.engine import compile_definition
from baton.metrics import METRIC_NAMES


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(objects, "Deployment")
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = main
    return result


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, for rules without resourceNames."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        if rule.get("resourceNames"):
            continue
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


NAMESPACED_RIGHTS = {
    ("baton.dev", "workflowruns"): {"get", "list", "watch", "create", "patch", "delete"},
    ("baton.dev", "workflowruns/status"): {"patch"},
    ("baton.dev", "workflows"): {"get", "list", "watch"},
    ("baton.dev", "workflows/status"): {"patch"},
    ("baton.dev", "workerpools"): {"get", "list", "watch"},
    ("baton.dev", "workerpools/status"): {"patch"},
    ("baton.dev", "schedules"): {"get", "list", "watch"},
    ("baton.dev", "schedules/status"): {"patch"},
    ("", "configmaps"): {"get", "list", "create", "patch"},
    ("", "pods"): {"get", "list"},
    ("", "secrets"): {"get", "create", "patch"},  # create, patch: WorkerPools' token Secrets
    ("", "events"): {"create"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch"},
    ("", "services"): {"get", "create", "patch"},
}


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--set", "watchNamespaces={team-a,team-b}"],
        ["--set", "standalone=true", "--set", "replicas=1"],
        ["--set", "metrics.serviceMonitor.enabled=true", "--set", "dashboard.enabled=true"],
        ["--set", "rbac.secretAccess=listed", "--set", "rbac.secretNamespaces={payments}"],
        ["--set", "networkPolicy.enabled=true"],
        ["--set", "metrics.prometheusRule.enabled=true", "--set", "shard=eu-1"],
    ],
    ids=[
        "cluster-wide",
        "namespaced",
        "standalone",
        "monitoring",
        "listed-secrets",
        "egress",
        "alerts",
    ],
)
def test_helm_lint_strict_passes(helm: Helm, args: list[str]) -> None:
    result = helm.run("lint", "--strict", str(CHART), *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_chart_crds_are_the_generated_ones_and_those_of_crds_dir() -> None:
    generated = crd_files()
    in_chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    in_repo = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert in_chart == generated, "charts/baton/crds/ is stale: run `make crds`"
    assert in_repo == in_chart


def test_default_deployment_runs_replicas_in_one_peering_with_distinct_priorities(
    helm: Helm,
) -> None:
    objects = helm.template()
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    args = container(objects)["args"]
    peering = one(objects, "ClusterKopfPeering")["metadata"]["name"]
    assert f"--peering={peering}" in args
    assert "--priority=auto" in args
    assert "--standalone" not in args
    assert not [a for a in args if a.startswith("--namespace")]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == spec["selector"]


def test_probes_use_kopfs_liveness_endpoint_and_metrics_are_served(helm: Helm) -> None:
    objects = helm.template()
    main = container(objects)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert f"--liveness=http://0.0.0.0:{ports['liveness']}/healthz" in main["args"]
    assert f"--metrics-port={ports['metrics']}" in main["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    service = one(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": ports["metrics"], "targetPort": "metrics", "protocol": "TCP"}
    ]
    selector = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector


def test_the_pod_is_restricted(helm: Helm) -> None:
    objects = helm.template()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(objects)["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container(objects)["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]


def test_cluster_wide_rbac_is_the_least_the_operator_needs(helm: Helm) -> None:
    objects = helm.template()
    role = operator_role(objects)
    assert not by_kind(objects, "Role")
    rights = rules_of(role)
    expected = {
        **NAMESPACED_RIGHTS,
        ("kopf.dev", "clusterkopfpeerings"): {"list", "watch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    }
    assert rights == expected
    named = [r for r in role["rules"] if r.get("resourceNames")]
    peering = one(objects, "ClusterKopfPeering")["metadata"]["name"]
    assert named == [
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "resourceNames": [peering],
            "verbs": ["get", "patch"],
        }
    ]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"], rule
        assert "*" not in rule["resources"], rule
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = one(objects, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": "baton-system"}
    ]


def test_namespaced_mode_has_roles_and_peerings_only_in_the_watched_namespaces(
    helm: Helm,
) -> None:
    objects = helm.template("--set", "watchNamespaces={team-a,team-b}")
    assert all(aggregated(role) for role in by_kind(objects, "ClusterRole"))
    assert not by_kind(objects, "ClusterRoleBinding")
    assert not by_kind(objects, "ClusterKopfPeering")
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == {
            **NAMESPACED_RIGHTS,
            ("kopf.dev", "kopfpeerings"): {"list", "watch"},
        }
    bindings = by_kind(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    peerings = by_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    args = container(objects)["args"]
    assert {"--namespace=team-a", "--namespace=team-b"} <= set(args)


def test_secrets_are_readable_only_in_the_listed_namespaces_when_so_chosen(helm: Helm) -> None:
    objects = helm.template(
        "--set", "rbac.secretAccess=listed", "--set", "rbac.secretNamespaces={payments,shop}"
    )
    assert rules_of(operator_role(objects))[("", "secrets")] == {"create", "patch"}
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["payments", "shop"]
    for role in roles:
        assert rules_of(role) == {("", "secrets"): {"get"}}
    bindings = by_kind(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["payments", "shop"]


@pytest.mark.parametrize(
    "args", [[], ["--set", "watchNamespaces={team-a}"]], ids=["cluster-wide", "namespaced"]
)
def test_no_secret_is_readable_when_secret_access_is_none(helm: Helm, args: list[str]) -> None:
    objects = helm.template("--set", "rbac.secretAccess=none", *args)
    for role in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
        assert "get" not in rules_of(role).get(("", "secrets"), set())


def test_the_egress_policy_refuses_metadata_addresses_and_allows_dns(helm: Helm) -> None:
    assert not by_kind(helm.template(), "NetworkPolicy")
    policy = one(helm.template("--set", "networkPolicy.enabled=true"), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Egress"]
    selector = one(helm.template(), "Deployment")["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == selector
    egress = policy["spec"]["egress"]
    assert {"protocol": "UDP", "port": 53} in egress[0]["ports"]
    v4, v6 = egress[2]["to"]
    assert v4["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"169.254.0.0/16", "168.63.129.16/32"} <= set(v4["ipBlock"]["except"])
    assert v6["ipBlock"]["cidr"] == "::/0"
    assert "fe80::/10" in v6["ipBlock"]["except"]


def test_standalone_is_one_replica_recreated_without_peering(helm: Helm) -> None:
    objects = helm.template("--set", "standalone=true", "--set", "replicas=1")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--standalone" in container(objects)["args"]
    assert not [a for a in container(objects)["args"] if a.startswith("--priority")]
    assert not by_kind(objects, "ClusterKopfPeering")
    assert not by_kind(objects, "PodDisruptionBudget")


def test_metrics_off_means_no_service_and_no_endpoint(helm: Helm) -> None:
    objects = helm.template("--set", "metrics.enabled=false")
    assert not by_kind(objects, "Service")
    assert "--metrics-port=0" in container(objects)["args"]


def test_service_monitor_and_dashboard_configmap(helm: Helm) -> None:
    objects = helm.template(
        "--set", "metrics.serviceMonitor.enabled=true", "--set", "dashboard.enabled=true"
    )
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = one(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    dashboard = one(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["baton.json"])
    assert shipped == json.loads((CHART / "dashboards" / "baton.json").read_text())
    exprs = " ".join(t["expr"] for p in shipped["panels"] for t in p["targets"])
    assert "baton_runs_started_total" in exprs
    assert METRIC_NAMES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicas=0"], "/replicas"),
        (["--set", "watchNamespaces={Bad_Name}"], "/watchNamespaces/0"),
        (["--set", "operator.logFormat=xml"], "/operator/logFormat"),
        (["--set", "replica=3"], "additional properties 'replica' not allowed"),
        (["--set", "metrics.port=70000"], "/metrics/port"),
        (["--set", "resources.limits.memory=lots"], "/resources/limits/memory"),
        (["--set", "standalone=true"], "standalone: true runs without peering, so replicas"),
        (["--set", "shard=-eu"], "/shard"),
        (
            ["--set", "operator.podPolicy.serviceAccounts={Admin_SA}"],
            "/operator/podPolicy/serviceAccounts/0",
        ),
        (["--set", "operator.podPolicy.annotations={a}"], "'annotations' not allowed"),
        (
            ["--set", "operator.http.callsPerNamespace=100"],
            "operator.http.callsPerNamespace (100) must be below operator.http.maxConnections",
        ),
        (
            ["--set", "operator.workerDispatch.maxConnections=250"],
            "operator.workerDispatch.callsPerNamespace (250) must be below "
            "operator.workerDispatch.maxConnections (250)",
        ),
        (["--set", "operator.http.defaultTimeout=0"], "/operator/http/defaultTimeout"),
        (
            ["--set-json", "metrics.prometheusRule.runFailureRatio=2"],
            "/metrics/prometheusRule/runFailureRatio",
        ),
        (["--set", "test.timeout=soon"], "/test/timeout"),
    ],
    ids=[
        "replicas",
        "namespace",
        "log-format",
        "typo",
        "port",
        "memory",
        "standalone",
        "shard",
        "service-account",
        "policy-typo",
        "http-namespace-share",
        "worker-namespace-share",
        "http-timeout",
        "failure-ratio",
        "test-timeout",
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    helm: Helm, args: list[str], message: str
) -> None:
    assert message in helm.refused(*args)


def test_extra_args_and_flags_reach_the_operator(helm: Helm) -> None:
    objects = helm.template(
        "--set",
        "operator.kubeEvents=false",
        "--set",
        "operator.allowLinkLocalHttp=true",
        "--set",
        "operator.extraArgs={--verbose}",
    )
    args = container(objects)["args"]
    assert {"--no-kube-events", "--allow-link-local-http", "--verbose"} <= set(args)


def test_step_events_are_off_unless_the_value_turns_them_on(helm: Helm) -> None:
    assert "--step-events" not in container(helm.template())["args"]
    objects = helm.template("--set", "operator.stepEvents=true")
    assert "--step-events" in container(objects)["args"]


def test_the_status_interval_value_reaches_the_operator(helm: Helm) -> None:
    assert "--status-interval=30" in container(helm.template())["args"]
    objects = helm.template("--set", "operator.statusInterval=0")
    assert "--status-interval=0" in container(objects)["args"]


def test_the_job_ttl_value_reaches_the_operator(helm: Helm) -> None:
    assert "--job-ttl=600" in container(helm.template())["args"]
    objects = helm.template("--set", "operator.jobTtlSeconds=3600")
    assert "--job-ttl=3600" in container(objects)["args"]


def test_the_resumes_in_flight_value_reaches_the_operator(helm: Helm) -> None:
    assert "--resumes-in-flight=32" in container(helm.template())["args"]
    objects = helm.template("--set", "operator.resumesInFlight=8")
    assert "--resumes-in-flight=8" in container(objects)["args"]


def test_the_pod_policy_reaches_the_operator_and_allows_nothing_by_default(
    helm: Helm,
) -> None:
    policy = ("--allow-service-account", "--allow-job-pod-annotation")
    assert not [a for a in container(helm.template())["args"] if a.startswith(policy)]
    args = container(
        helm.template(
            "--set",
            "operator.podPolicy.serviceAccounts={ci-*,reporter}",
            "--set",
            "operator.podPolicy.jobAnnotations={sidecar.istio.io/*}",
        )
    )["args"]
    assert [a for a in args if a.startswith(policy)] == [
        "--allow-service-account=ci-*",
        "--allow-service-account=reporter",
        "--allow-job-pod-annotation=sidecar.istio.io/*",
    ]


def test_http_limits_reach_the_operator(helm: Helm) -> None:
    defaults = container(helm.template())["args"]
    assert {
        "--http-default-timeout=60",
        "--http-max-connections=100",
        "--http-calls-per-namespace=25",
        "--http-calls-per-run=10",
        "--worker-max-connections=1000",
        "--worker-calls-per-namespace=250",
    } <= set(defaults)
    args = container(
        helm.template(
            "--set-json",
            "operator.http.defaultTimeout=2.5",
            "--set",
            "operator.http.callsPerRun=3",
            "--set",
            "operator.workerDispatch.callsPerNamespace=40",
        )
    )["args"]
    assert {"--http-default-timeout=2.5", "--http-calls-per-run=3"} <= set(args)
    assert "--worker-calls-per-namespace=40" in args


def test_a_shard_reaches_the_operator_and_none_by_default(helm: Helm) -> None:
    assert not [a for a in container(helm.template())["args"] if a.startswith("--shard")]
    assert "--shard=eu-1" in container(helm.template("--set", "shard=eu-1"))["args"]


def test_the_hello_example_in_notes_is_a_valid_run() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "examples/hello/run.yaml" in notes
    run = yaml.safe_load((ROOT / "examples" / "hello" / "run.yaml").read_text())
    spec = WorkflowRunSpec.model_validate(run["spec"])
    assert spec.workflow is not None
    assert compile_definition(WorkflowSpec.model_validate(run["spec"]["workflow"])).steps


def test_values_yaml_documents_every_top_level_key_of_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
    assert set(schema["properties"]) - set(values) <= {"global"}
    assert Path(CHART / "templates" / "NOTES.txt").exists()


# -- rights of the people who use Baton ------------------------------------------------------

USER_RIGHTS = {
    "view": {
        ("baton.dev", "workflows"): {"get", "list", "watch"},
        ("baton.dev", "workflowruns"): {"get", "list", "watch"},
        ("baton.dev", "workerpools"): {"get", "list", "watch"},
        ("baton.dev", "schedules"): {"get", "list", "watch"},
    },
    "edit": {
        ("baton.dev", "workflows"): {"create", "update", "patch", "delete", "deletecollection"},
        ("baton.dev", "workflowruns"): {"create", "update", "patch", "delete", "deletecollection"},
        ("baton.dev", "schedules"): {"create", "update", "patch", "delete", "deletecollection"},
    },
    "admin": {
        ("baton.dev", "workerpools"): {"create", "update", "patch", "delete", "deletecollection"},
    },
}
"""What each aggregated ClusterRole adds, on top of the roles below it (edit has view's rules,
admin has edit's)."""


@pytest.mark.parametrize(
    "args", [[], ["--set", "watchNamespaces={team-a}"]], ids=["cluster-wide", "namespaced"]
)
def test_view_reads_edit_runs_and_signals_admin_manages_pools_and_none_touch_status(
    helm: Helm, args: list[str]
) -> None:
    roles = [r for r in by_kind(helm.template(*args), "ClusterRole") if aggregated(r)]
    granted: dict[str, dict[tuple[str, str], set[str]]] = {}
    for role in roles:
        for user_role in aggregated(role):
            for key, verbs in rules_of(role).items():
                granted.setdefault(user_role, {}).setdefault(key, set()).update(verbs)
    assert granted["view"] == USER_RIGHTS["view"]
    assert granted["edit"] == {
        key: USER_RIGHTS["view"].get(key, set()) | USER_RIGHTS["edit"].get(key, set())
        for key in USER_RIGHTS["view"].keys() | USER_RIGHTS["edit"].keys()
    }
    assert (
        granted["admin"][("baton.dev", "workerpools")]
        >= USER_RIGHTS["admin"][("baton.dev", "workerpools")]
    )
    for role in roles:
        resources = {r for rule in role["rules"] for r in rule["resources"]}
        assert not {r for r in resources if r.endswith("/status")}, role
        assert not by_kind([role], "ClusterRoleBinding")


def test_aggregation_can_be_turned_off(helm: Helm) -> None:
    objects = helm.template("--set", "rbac.aggregateToDefaultRoles=false")
    assert [r for r in by_kind(objects, "ClusterRole") if aggregated(r)] == []


# -- alerts ------------------------------------------------------------------------------------

ALERTS = {
    "BatonRunsFailing",
    "BatonCompensationFailed",
    "BatonStepRetryingHot",
    "BatonPoolBacklogGrowing",
    "BatonPoolWithoutWorkers",
    "BatonOperatorNotLeading",
    "BatonOperatorSplitBrain",
    "BatonApiWriteErrors",
}


def alert_rules(helm: Helm, *args: str) -> list[dict[str, Any]]:
    rule = one(
        helm.template("--set", "metrics.prometheusRule.enabled=true", *args), "PrometheusRule"
    )
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_prometheus_rule_is_off_by_default_and_off_without_metrics(helm: Helm) -> None:
    assert not by_kind(helm.template(), "PrometheusRule")
    off = helm.template(
        "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.enabled=false"
    )
    assert not by_kind(off, "PrometheusRule")


def test_every_alert_uses_only_known_metric_names_and_selects_the_release(helm: Helm) -> None:
    rules = alert_rules(helm)
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        used = set(re.findall(r"\b(baton_[a-z_]+)", rule["expr"]))
        assert used, rule["alert"]
        assert used <= METRIC_NAMES, (rule["alert"], used - METRIC_NAMES)
        selectors = re.findall(r"baton_[a-z_]+\{([^}]*)\}", rule["expr"])
        assert len(selectors) == len(re.findall(r"\bbaton_[a-z_]+", rule["expr"])), rule["expr"]
        for selector in selectors:
            assert selector.startswith('job="baton-metrics"'), (rule["alert"], selector)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["expr"]


def test_every_alert_and_dashboard_expression_is_valid_promql(helm: Helm) -> None:
    """Prometheus' own parser (hack/promql-check) reads every alert and every dashboard panel;
    Grafana's variables are given sample values first, as Grafana does."""
    if not go_available():
        pytest.skip("hack/promql-check is built from Go modules and Go is not installed")
    expressions = [r["expr"] for r in alert_rules(helm)]
    dashboard = json.loads((CHART / "dashboards" / "baton.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h")
            expressions.append(re.sub(r"\$\w+", ".*", expr))
    result = subprocess.run(
        [str(ROOT / "hack" / "promql-check.sh")],
        input=json.dumps(expressions),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(expressions)} expressions, 0 refused" in result.stdout


def test_alert_thresholds_and_selector_come_from_values(helm: Helm) -> None:
    rules = alert_rules(
        helm,
        "--set-json",
        "metrics.prometheusRule.runFailureRatio=0.25",
        "--set-string",
        'metrics.prometheusRule.selector=job="ops"',
    )
    failing = next(r for r in rules if r["alert"] == "BatonRunsFailing")
    assert ") > 0.25" in failing["expr"]
    assert all('{job="ops"' in r["expr"] for r in rules)
    assert 'job="baton-metrics"' not in str(rules)


def test_the_service_monitor_keeps_the_runs_namespace_label(helm: Helm) -> None:
    objects = helm.template("--set", "metrics.serviceMonitor.enabled=true")
    assert one(objects, "ServiceMonitor")["spec"]["endpoints"][0]["honorLabels"] is True


# -- helm test ---------------------------------------------------------------------------------


def test_helm_test_waits_for_an_inline_run_with_the_operator_image_and_a_read_only_account(
    helm: Helm,
) -> None:
    hooks = helm.template(tests=True)
    for hook in hooks:
        annotations = hook["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        assert hook["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
    run = one(hooks, "WorkflowRun")
    spec = WorkflowRunSpec.model_validate(run["spec"])
    assert spec.workflow is not None
    assert compile_definition(WorkflowSpec.model_validate(run["spec"]["workflow"])).steps
    pod = one(hooks, "Pod")
    weight = lambda o: int(o["metadata"]["annotations"]["helm.sh/hook-weight"])  # noqa: E731
    assert weight(pod) > weight(run) > weight(one(hooks, "RoleBinding"))
    (main,) = pod["spec"]["containers"]
    assert main["image"] == container(helm.template())["image"]
    name, namespace = run["metadata"]["name"], run["metadata"]["namespace"]
    assert main["command"] == ["baton"]  # the image's entrypoint is `baton operator`
    assert main["args"] == ["wait", name, "--namespace", namespace, "--timeout", "2m"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    account = one(hooks, "ServiceAccount")["metadata"]["name"]
    assert pod["spec"]["serviceAccountName"] == account
    role = one(hooks, "Role")
    assert role["metadata"]["namespace"] == namespace
    assert role["rules"] == [
        {
            "apiGroups": ["baton.dev"],
            "resources": ["workflowruns"],
            "resourceNames": [name],
            "verbs": ["get"],
        }
    ]
    binding = one(hooks, "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "baton-system"}
    ]
    assert not [o for o in helm.template() if o["kind"] in {"Pod", "WorkflowRun"}]


@pytest.mark.parametrize(
    ("args", "namespace"),
    [
        ([], "baton-system"),
        (["--set", "watchNamespaces={team-a,team-b}"], "team-a"),
        (["--set", "watchNamespaces={team-a}", "--set", "test.namespace=team-b"], "team-b"),
    ],
    ids=["release", "first-watched", "chosen"],
)
def test_the_test_run_goes_where_the_operator_watches(
    helm: Helm, args: list[str], namespace: str
) -> None:
    hooks = helm.template(*args, tests=True)
    assert one(hooks, "WorkflowRun")["metadata"]["namespace"] == namespace
    assert one(hooks, "Role")["metadata"]["namespace"] == namespace


def test_the_test_run_carries_the_releases_shard(helm: Helm) -> None:
    run = one(helm.template("--set", "shard=eu-1", tests=True), "WorkflowRun")
    assert run["metadata"]["labels"]["baton.dev/shard"] == "eu-1"
    assert (
        "baton.dev/shard" not in one(helm.template(tests=True), "WorkflowRun")["metadata"]["labels"]
    )


def test_helm_test_can_be_turned_off(helm: Helm) -> None:
    assert helm.template("--set", "test.enabled=false", tests=True) == []
