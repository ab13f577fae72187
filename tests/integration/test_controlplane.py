"""The local control plane is the real thing: the API server validates (schema and CEL), serves
the status subresource, watches and optimistic concurrency; the controller-manager runs Jobs,
Deployments and garbage collection; kwok's simulated pods complete, fail and report a
termination message as a test asks. One behaviour per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from clusterkit import Cluster

pytestmark = pytest.mark.integration

WAIT = "60s"  # how long kubectl waits for an outcome that takes well under a second here


def configmap(name: str, data: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data or {})


def job(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Job of one pod that is not retried; ``annotations`` go on its pod (kwok reads them)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "registry.example/step:1"}],
                },
            },
        },
    }


def watch_job_until(
    cluster: Cluster, namespace: str, name: str, done: Callable[[client.V1Job], bool]
) -> client.V1Job:
    """Watch one Job until ``done(job)``; fail after 60 s."""
    batch = client.BatchV1Api(cluster.api_client)
    stream = watch.Watch().stream(
        batch.list_namespaced_job,
        namespace,
        field_selector=f"metadata.name={name}",
        timeout_seconds=60,
    )
    for event in stream:
        if done(event["object"]):
            return event["object"]
    pytest.fail(f"job {namespace}/{name} did not get there in 60s")


def condition(obj: client.V1Job, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in obj.status.conditions or [])


def only_pod(cluster: Cluster, namespace: str, job_name: str) -> client.V1Pod:
    pods = client.CoreV1Api(cluster.api_client).list_namespaced_pod(
        namespace, label_selector=f"job-name={job_name}"
    )
    assert len(pods.items) == 1
    return pods.items[0]


def crd(group: str, *, validations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A namespaced CRD ``widgets.<group>`` with a status subresource and optional CEL rules."""
    spec_schema: dict[str, Any] = {
        "type": "object",
        "required": ["minReplicas", "maxReplicas"],
        "properties": {
            "minReplicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer"},
        },
    }
    if validations:
        spec_schema["x-kubernetes-validations"] = validations
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
def widgets(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A Widget CRD of the test's own (its group is named after the namespace), installed and
    Established, with the CEL rule ``self.minReplicas <= self.maxReplicas``; removed after."""
    group = f"{namespace}.test.baton.dev"
    rule = {"rule": "self.minReplicas <= self.maxReplicas", "message": "min above max"}
    cluster.apply(crd(group, validations=[rule]))
    cluster.kubectl(
        "wait", "--for=condition=Established", f"crd/widgets.{group}", f"--timeout={WAIT}"
    )
    yield group
    cluster.kubectl("delete", f"crd/widgets.{group}", "--wait=false")


def widget(group: str, name: str, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"minReplicas": minimum, "maxReplicas": maximum},
    }


def test_api_server_reports_the_pinned_kubernetes_version(cluster: Cluster) -> None:
    version = client.VersionApi(cluster.api_client).get_code()
    assert (version.major, version.minor) == ("1", "36")
    assert version.git_version.startswith("v1.36.")


def test_cel_rule_of_a_crd_refuses_a_bad_object_with_its_message(
    cluster: Cluster, namespace: str, widgets: str
) -> None:
    api = client.CustomObjectsApi(cluster.api_client)
    api.create_namespaced_custom_object(
        widgets, "v1", namespace, "widgets", widget(widgets, "ok", 1, 3)
    )
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_custom_object(
            widgets, "v1", namespace, "widgets", widget(widgets, "bad", 5, 2)
        )
    assert refused.value.status == 422
    assert "min above max" in refused.value.body


def test_crd_schema_refuses_an_object_missing_a_required_field(
    cluster: Cluster, namespace: str, widgets: str
) -> None:
    bad = widget(widgets, "bad", 1, 2)
    del bad["spec"]["maxReplicas"]
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(cluster.api_client).create_namespaced_custom_object(
            widgets, "v1", namespace, "widgets", bad
        )
    assert refused.value.status == 422
    assert "spec.maxReplicas: Required value" in refused.value.body


def test_status_subresource_keeps_status_out_of_spec_writes(
    cluster: Cluster, namespace: str, widgets: str
) -> None:
    api = client.CustomObjectsApi(cluster.api_client)
    body = widget(widgets, "w", 1, 2) | {"status": {"phase": "Ignored"}}
    created = api.create_namespaced_custom_object(widgets, "v1", namespace, "widgets", body)
    assert "status" not in created
    api.patch_namespaced_custom_object_status(
        widgets, "v1", namespace, "widgets", "w", {"status": {"phase": "Running"}}
    )
    stored = api.get_namespaced_custom_object(widgets, "v1", namespace, "widgets", "w")
    assert stored["status"] == {"phase": "Running"}
    assert stored["metadata"]["generation"] == 1


def test_job_completes_when_kwok_finishes_its_pod(cluster: Cluster, namespace: str) -> None:
    client.BatchV1Api(cluster.api_client).create_namespaced_job(namespace, job("hello"))
    done = watch_job_until(
        cluster, namespace, "hello", lambda j: condition(j, "Complete") or condition(j, "Failed")
    )
    assert condition(done, "Complete")
    assert done.status.succeeded == 1
    assert only_pod(cluster, namespace, "hello").status.phase == "Succeeded"


def test_job_fails_when_its_pod_is_annotated_with_an_exit_code(
    cluster: Cluster, namespace: str
) -> None:
    failing = job("broken", annotations={"kwok.baton.dev/exit-code": "3"})
    client.BatchV1Api(cluster.api_client).create_namespaced_job(namespace, failing)
    done = watch_job_until(
        cluster, namespace, "broken", lambda j: condition(j, "Complete") or condition(j, "Failed")
    )
    assert condition(done, "Failed")
    assert done.status.failed == 1
    pod = only_pod(cluster, namespace, "broken")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")


def test_pod_reports_the_termination_message_the_test_chose(
    cluster: Cluster, namespace: str
) -> None:
    output = json.dumps({"id": "tx-42", "amount": 1250000})
    chosen = job("charge", annotations={"kwok.baton.dev/termination-message": output})
    client.BatchV1Api(cluster.api_client).create_namespaced_job(namespace, chosen)
    watch_job_until(cluster, namespace, "charge", lambda j: condition(j, "Complete"))
    terminated = (
        only_pod(cluster, namespace, "charge").status.container_statuses[0].state.terminated
    )
    assert terminated.message == output
    assert terminated.exit_code == 0


def test_job_pod_runs_for_the_annotated_duration(cluster: Cluster, namespace: str) -> None:
    slow = job("slow", annotations={"kwok.baton.dev/duration": "3s"})
    client.BatchV1Api(cluster.api_client).create_namespaced_job(namespace, slow)
    done = watch_job_until(cluster, namespace, "slow", lambda j: condition(j, "Complete"))
    pod = only_pod(cluster, namespace, "slow")
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.finished_at - terminated.started_at).total_seconds() >= 3
    assert (done.status.completion_time - done.status.start_time).total_seconds() >= 3


def test_deployment_rolls_out_ready_pods_and_scales(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create",
        "deployment",
        "web",
        "--image=registry.example/web:1",
        "--replicas=2",
        "-n",
        namespace,
    )
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, f"--timeout={WAIT}")
    apps = client.AppsV1Api(cluster.api_client)
    (replicaset,) = apps.list_namespaced_replica_set(namespace).items
    assert replicaset.metadata.owner_references[0].name == "web"
    assert replicaset.status.ready_replicas == 2

    cluster.kubectl("scale", "deployment/web", "--replicas=3", "-n", namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, f"--timeout={WAIT}")
    pods = client.CoreV1Api(cluster.api_client).list_namespaced_pod(namespace).items
    ready = [
        p
        for p in pods
        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    assert len(ready) == 3
    assert apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 3


def test_garbage_collector_deletes_what_a_deleted_owner_owned(
    cluster: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api_client)
    owner = core.create_namespaced_config_map(namespace, configmap("owner"))
    owned = configmap("owned")
    owned.metadata.owner_references = [
        client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
        )
    ]
    core.create_namespaced_config_map(namespace, owned)
    core.delete_namespaced_config_map("owner", namespace)
    cluster.kubectl("wait", "--for=delete", "configmap/owned", "-n", namespace, f"--timeout={WAIT}")
    assert not core.list_namespaced_config_map(
        namespace, field_selector="metadata.name=owned"
    ).items


def test_kubectl_applies_patches_and_queries_through_the_kubeconfig(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n",
        namespace=namespace,
    )
    patch = [{"op": "add", "path": "/data/size", "value": "large"}]
    cluster.kubectl(
        "patch", "configmap/settings", "-n", namespace, "--type", "json", "-p", json.dumps(patch)
    )
    got = cluster.kubectl(
        "get", "configmap/settings", "-n", namespace, "-o", "jsonpath={.data.color}/{.data.size}"
    )
    assert got.stdout == "blue/large"


def test_update_with_a_stale_resource_version_gets_409(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    stale = core.create_namespaced_config_map(namespace, configmap("shared", {"n": "0"}))
    fresh = core.read_namespaced_config_map("shared", namespace)
    fresh.data["n"] = "1"
    core.replace_namespaced_config_map("shared", namespace, fresh)
    stale.data["n"] = "2"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("shared", namespace, stale)
    assert conflict.value.status == 409
    assert core.read_namespaced_config_map("shared", namespace).data == {"n": "1"}


def test_cluster_has_at_least_two_ready_nodes(cluster: Cluster) -> None:
    nodes = client.CoreV1Api(cluster.api_client).list_node(label_selector="type=kwok").items
    ready = [
        n
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    ]
    assert len(ready) >= 2


def test_watch_delivers_changes_in_order(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("counter", {"n": "0"}))
    for n in range(1, 4):
        core.patch_namespaced_config_map("counter", namespace, {"data": {"n": str(n)}})
    seen = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=start,
        field_selector="metadata.name=counter",
        timeout_seconds=30,
    ):
        seen.append((event["type"], event["object"].data["n"]))
        if len(seen) == 4:
            break
    assert seen == [("ADDED", "0"), ("MODIFIED", "1"), ("MODIFIED", "2"), ("MODIFIED", "3")]


def test_helm_installs_a_chart_into_the_cluster(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "templates" / "settings.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
        "data: {greeting: {{ .Values.greeting | quote }}}\n"
    )
    cluster.helm("install", "demo", str(chart), "-n", namespace, "--set", "greeting=hi", "--wait")
    got = cluster.kubectl("get", "configmap/settings", "-n", namespace, "-o", "jsonpath={.data}")
    assert json.loads(got.stdout) == {"greeting": "hi"}
    assert "deployed" in cluster.helm("status", "demo", "-n", namespace).stdout
