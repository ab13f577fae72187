"""What a WorkerPool owns: its Deployment (pod template from the spec, replicas only when Baton
scales), its Service, and its status with the Ready condition."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from baton.api.pool import WorkerPoolSpec
from baton.pools import objects

NOW = "2026-11-25T03:00:00Z"
LATER = "2026-11-25T03:05:00Z"


def pool(**spec: Any) -> tuple[dict[str, Any], WorkerPoolSpec]:
    body = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "payments", "namespace": "shop", "uid": "p-1", "generation": 3},
        "spec": {"image": "registry.example/payments:1.4", **spec},
    }
    return body, WorkerPoolSpec.model_validate(body["spec"])


def test_the_deployment_runs_the_pools_image_with_its_settings() -> None:
    body, spec = pool(
        args=["payments:worker"],
        env=[
            {"name": "PSP", "value": "test"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "psp", "key": "token"}}},
        ],
        resources={"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}},
        serviceAccountName="payments",
        port=9000,
    )
    deployment = objects.deployment(body, spec, replicas=3)
    assert deployment["metadata"]["name"] == "payments"
    assert deployment["metadata"]["namespace"] == "shop"
    [owner] = deployment["metadata"]["ownerReferences"]
    assert owner["kind"] == "WorkerPool"
    assert owner["uid"] == "p-1"
    assert owner["controller"] is True
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"] == {"matchLabels": {objects.POOL: "payments"}}
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"][objects.POOL] == "payments"
    assert template["spec"]["serviceAccountName"] == "payments"
    [container] = template["spec"]["containers"]
    assert container["image"] == "registry.example/payments:1.4"
    assert container["args"] == ["payments:worker"]
    assert "command" not in container
    assert container["env"] == [
        {"name": "PSP", "value": "test"},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "psp", "key": "token"}}},
        {"name": "BATON_WORKER_TOKENS", "value": "/var/run/baton/worker-token"},
    ]
    assert container["resources"] == {"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}}
    assert container["ports"] == [{"name": "tasks", "containerPort": 9000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "tasks"}


def test_the_workers_mount_the_pools_token_secret_read_only() -> None:
    body, spec = pool()
    pod = objects.deployment(body, spec, replicas=1)["spec"]["template"]["spec"]
    assert {
        "name": "worker-token",
        "secret": {"secretName": "payments-worker-token", "defaultMode": 0o444},
    } in pod["volumes"]
    [container] = pod["containers"]
    assert {
        "name": "worker-token",
        "mountPath": "/var/run/baton/worker-token",
        "readOnly": True,
    } in container["volumeMounts"]
    assert {"name": "BATON_WORKER_TOKENS", "value": "/var/run/baton/worker-token"} in container[
        "env"
    ]


TEMPLATE = {
    "nodeSelector": {"pool": "workers"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "workers", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    },
    "imagePullSecrets": [{"name": "registry"}],
    "securityContext": {"runAsUser": 10001, "fsGroup": 2000},
    "volumes": [
        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "certs", "secret": {"secretName": "psp-certs"}},
    ],
    "terminationGracePeriodSeconds": 600,
}


def test_the_pod_template_reaches_the_deployment_with_the_restricted_profile_kept() -> None:
    body, spec = pool(
        template={"spec": TEMPLATE},
        envFrom=[
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "psp"}, "prefix": "PSP_"},
        ],
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    pod = objects.deployment(body, spec, replicas=1)["spec"]["template"]["spec"]
    for field in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "imagePullSecrets",
        "terminationGracePeriodSeconds",
    ):
        assert pod[field] == TEMPLATE[field]
    assert pod["securityContext"] == {
        "runAsUser": 10001,
        "fsGroup": 2000,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["volumes"][:2] == TEMPLATE["volumes"]
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "settings"}},
        {"prefix": "PSP_", "secretRef": {"name": "psp"}},
    ]
    assert container["volumeMounts"][0] == {"name": "scratch", "mountPath": "/scratch"}
    assert container["securityContext"] == dict(objects.RESTRICTED_CONTAINER)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            {"template": {"spec": {"securityContext": {"runAsUser": 0}}}},
            "greater than or equal to 1",
        ),
        ({"template": {"spec": {"securityContext": {"privileged": True}}}}, "privileged"),
        ({"template": {"spec": {"hostNetwork": True}}}, "hostNetwork"),
        (
            {"template": {"spec": {"priorityClassName": "system-cluster-critical"}}},
            "priorityClassName",
        ),
        ({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}, "metadata"),
        (
            {"template": {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}},
            "hostPath",
        ),
        (
            {
                "template": {
                    "spec": {
                        "tolerations": [
                            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}
                        ]
                    }
                }
            },
            "control-plane",
        ),
        ({"template": {"spec": {"tolerations": [{"operator": "Exists"}]}}}, "key"),
        (
            {"template": {"spec": {"volumes": [{"name": "worker-token", "emptyDir": {}}]}}},
            "Baton's",
        ),
        ({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, "not a volume"),
        (
            {
                "template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
                "volumeMounts": [{"name": "v", "mountPath": "/var/run/baton/worker-token"}],
            },
            "overlaps /var/run/baton",
        ),
        ({"envFrom": [{"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}]}, "exactly one"),
    ],
)
def test_pod_fields_a_tenant_could_abuse_are_refused_naming_the_field(
    spec: dict[str, Any], says: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        WorkerPoolSpec.model_validate({"image": "w:1", **spec})
    assert says in str(raised.value)


def test_with_external_scaling_replicas_are_never_written() -> None:
    body, spec = pool(scaling="external")
    assert "replicas" not in objects.deployment(body, spec, replicas=5)["spec"]
    body, spec = pool()
    assert "replicas" not in objects.deployment(body, spec, replicas=None)["spec"]


def test_the_service_selects_the_pools_workers_on_the_task_port() -> None:
    body, spec = pool(port=9000)
    service = objects.service(body, spec)
    assert service["metadata"]["name"] == "payments"
    assert service["spec"]["selector"] == {objects.POOL: "payments"}
    assert service["spec"]["ports"] == [
        {"name": "tasks", "port": 9000, "targetPort": "tasks", "protocol": "TCP"}
    ]


def deployment_with(replicas: int, ready: int) -> dict[str, Any]:
    return {"status": {"replicas": replicas, "readyReplicas": ready}}


def test_the_status_shows_replicas_backlog_in_flight_and_readiness() -> None:
    body, spec = pool()
    status = objects.status(
        body,
        spec,
        deployment_body=deployment_with(3, 2),
        desired=4,
        backlog=7,
        in_flight=8,
        now=NOW,
        last_scale_time=NOW,
    )
    assert status == {
        "replicas": 3,
        "readyReplicas": 2,
        "desiredReplicas": 4,
        "backlog": 7,
        "inFlight": 8,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "WorkersReady",
                "message": "2 worker(s) ready",
                "lastTransitionTime": NOW,
            }
        ],
        "observedGeneration": 3,
        "lastScaleTime": NOW,
    }


def test_the_ready_condition_says_why_tasks_wait_and_keeps_its_transition_time() -> None:
    body, spec = pool()
    waiting = objects.status(
        body,
        spec,
        deployment_body=deployment_with(2, 0),
        desired=2,
        backlog=3,
        in_flight=0,
        now=NOW,
    )
    [ready] = waiting["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "NoReadyWorkers")
    body["status"] = waiting
    again = objects.status(
        body,
        spec,
        deployment_body=deployment_with(2, 0),
        desired=2,
        backlog=3,
        in_flight=0,
        now=LATER,
    )
    assert again["conditions"][0]["lastTransitionTime"] == NOW
    idle = objects.status(
        body,
        spec,
        deployment_body=deployment_with(0, 0),
        desired=0,
        backlog=0,
        in_flight=0,
        now=LATER,
    )
    assert idle["conditions"][0]["reason"] == "ScaledToZero"
    assert idle["conditions"][0]["lastTransitionTime"] == NOW  # still False since NOW
    assert objects.observed_replicas(None) == (0, 0)


def test_a_pool_with_an_endpoint_is_ready_without_workers() -> None:
    body = {
        "metadata": {"name": "dev", "namespace": "shop", "uid": "p-2", "generation": 1},
        "spec": {"endpoint": "http://127.0.0.1:8080"},
    }
    spec = WorkerPoolSpec.model_validate(body["spec"])
    status = objects.status(
        body, spec, deployment_body=None, desired=0, backlog=0, in_flight=1, now=NOW
    )
    assert status["conditions"][0]["reason"] == "ExternalEndpoint"
    assert status["inFlight"] == 1


def test_a_pool_with_an_endpoint_and_an_image_reports_its_deployments_workers() -> None:
    body = {
        "metadata": {"name": "dev", "namespace": "shop", "uid": "p-3", "generation": 1},
        "spec": {"image": "worker:1", "endpoint": "http://127.0.0.1:8080"},
    }
    spec = WorkerPoolSpec.model_validate(body["spec"])
    status = objects.status(
        body,
        spec,
        deployment_body=deployment_with(2, 1),
        desired=2,
        backlog=3,
        in_flight=2,
        now=NOW,
    )
    assert (status["replicas"], status["readyReplicas"]) == (2, 1)
    assert status["conditions"][0]["reason"] == "WorkersReady"


def test_worker_pods_run_restricted_and_without_an_api_token() -> None:
    body, spec = pool()
    template = objects.deployment(body, spec, replicas=1)["spec"]["template"]["spec"]
    assert template["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in template
    assert template["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    [container] = template["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_a_pool_that_names_a_service_account_gets_its_token_as_the_account_says() -> None:
    body, spec = pool(serviceAccountName="payments")
    template = objects.deployment(body, spec, replicas=1)["spec"]["template"]["spec"]
    assert template["serviceAccountName"] == "payments"
    assert "automountServiceAccountToken" not in template  # the ServiceAccount's own setting


def test_only_objects_carrying_the_pools_uid_are_the_pools() -> None:
    body, _spec = pool()
    own = {"metadata": {"ownerReferences": [{"kind": "WorkerPool", "uid": "p-1"}]}}
    namesake = {"metadata": {"ownerReferences": [{"kind": "WorkerPool", "uid": "p-0"}]}}
    labelled = {"metadata": {"labels": objects.labels("payments")}}
    assert objects.owned_by(own, body)
    assert not objects.owned_by(namesake, body)
    assert not objects.owned_by(labelled, body)
    assert not objects.owned_by(None, body)
