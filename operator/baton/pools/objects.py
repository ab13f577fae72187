"""What a WorkerPool owns, as the objects the operator applies: its Deployment of workers, its
Service, and the pool's status. Pure: the handler reads the pool and its Deployment and passes
them in.

- The Deployment and the Service are named like the pool and owned by it (deleting the pool
  deletes them). Pods carry `baton.dev/pool: <name>`, which the Service selects.
- Adoption: an object of that name is the pool's only when it carries the pool's own
  ownerReference (`owned_by`, by uid, which no one can know before the pool exists). Anything
  else of the same name — a Service someone made, a Deployment of a deleted namesake pool — is
  foreign: `conflict` says so, for the pool's Ready condition and a Warning Event (`Blocked`),
  and the handler neither patches it nor sends tasks to it.
- The pod template comes from the spec: image, command, args, env, envFrom, resources, volume
  mounts, service account, the task port, and an HTTP readiness probe on `/healthz` (what the
  SDK's worker serves); the pod-level fields of `spec.template.spec` (nodeSelector,
  tolerations, affinity, topology spread, imagePullSecrets, user and groups, volumes, grace
  period) are copied as the model let them through. The pool's token Secret
  (baton.pools.tokens) is mounted read-only at `/var/run/baton/worker-token`, and
  `BATON_WORKER_TOKENS` names it to `baton-worker`. Pods run restricted (non-root,
  RuntimeDefault seccomp, every capability dropped, no privilege escalation), like Job steps'
  pods, and without a ServiceAccount token unless the pool names a `serviceAccountName`.
- `spec.replicas` is written only with `scaling: baton`; with `scaling: external` the field is
  left out of every apply, so the autoscaler that owns it (an HPA, KEDA) is never overridden.
- A pool with `endpoint` has neither: its worker runs elsewhere.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from baton.api.conditions import set_condition
from baton.api.labels import API_VERSION, PART, SHARD
from baton.api.pool import RESERVED_VOLUME, ScalingMode, WorkerPoolSpec
from baton.pools import tokens

POOL = "baton.dev/pool"
"""Label: the WorkerPool a worker pod, its Deployment and Service belong to."""


@dataclass(frozen=True)
class Blocked:
    """Why the pool's Deployment and Service are not applied and it gets no tasks: the reason
    of its Ready condition and Warning Event, and their message."""

    reason: str
    message: str


NAME_CONFLICT = "NameConflict"
"""Reason of the Ready condition and of the Warning Event when a foreign object holds the name
of the pool's Deployment or Service."""

HEALTH_PATH = "/healthz"
"""The readiness probe's path on the task port."""


def _owner(pool: Mapping[str, Any]) -> dict[str, Any]:
    meta = pool["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkerPool",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(body: Mapping[str, Any] | None, pool: Mapping[str, Any]) -> bool:
    """True when `body` carries `pool`'s ownerReference: the pool created it (or adopted it
    from an earlier reconciliation), so it is the pool's to patch and use. The uid is what
    counts: a label or a name anyone can give an object, the uid only exists once the pool
    does."""
    if not body:
        return False
    uid = pool["metadata"].get("uid")
    return uid is not None and any(
        ref.get("kind") == "WorkerPool" and ref.get("uid") == uid
        for ref in (body.get("metadata") or {}).get("ownerReferences") or []
    )


def conflict(
    kind: str, found: Mapping[str, Any], pool: Mapping[str, Any], name: str | None = None
) -> str:
    """What the pool's Ready condition and Warning Event say about a foreign object holding
    the name of the pool's Deployment, Service (`name` None: the pool's own) or token
    Secret."""
    meta = pool["metadata"]
    where = f"{meta['namespace']}/{name or meta['name']}"
    owners = [
        f"{ref.get('kind')} {ref.get('name')}"
        for ref in (found.get("metadata") or {}).get("ownerReferences") or []
    ]
    whose = f"owned by {', '.join(owners)}" if owners else "not created by this pool"
    return (
        f"{kind} {where} exists and is {whose}: Baton leaves it untouched and sends the "
        f"pool no tasks; rename the WorkerPool, or delete or rename the {kind}"
    )


RESTRICTED_CONTAINER: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The worker container's securityContext: Pod Security Standards' `restricted` profile."""

RESTRICTED_POD: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The worker pod's securityContext."""


def labels(name: str) -> dict[str, str]:
    """The labels of a pool's Deployment, Service and pods."""
    return {POOL: name, PART: "worker"}


def _meta(pool: Mapping[str, Any]) -> dict[str, Any]:
    return owned_meta(pool, pool["metadata"]["name"])


def owned_meta(pool: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The metadata of an object named `name` the pool owns: its labels (and shard) and its
    ownerReference."""
    meta = pool["metadata"]
    own = labels(meta["name"])
    shard = (meta.get("labels") or {}).get(SHARD)
    if shard is not None:
        own[SHARD] = shard  # the pool's shard watches its Deployment by this label
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": own,
        "ownerReferences": [_owner(pool)],
    }


def _env(spec: WorkerPoolSpec) -> list[dict[str, Any]]:
    return [var.model_dump(by_alias=True, exclude_none=True) for var in spec.env or []]


def _dump(models: Any) -> list[dict[str, Any]]:
    return [m.model_dump(by_alias=True, exclude_none=True) for m in models]


def deployment(
    pool: Mapping[str, Any], spec: WorkerPoolSpec, replicas: int | None
) -> dict[str, Any]:
    """The pool's Deployment; `replicas` None leaves `spec.replicas` to someone else."""
    name = pool["metadata"]["name"]
    container: dict[str, Any] = {
        "name": "worker",
        "image": spec.image,
        "ports": [{"name": "tasks", "containerPort": spec.port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": HEALTH_PATH, "port": "tasks"},
            "periodSeconds": 5,
        },
        "securityContext": copy.deepcopy(dict(RESTRICTED_CONTAINER)),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    env = _env(spec)
    env.append({"name": tokens.TOKENS_ENV, "value": tokens.MOUNT_PATH})
    container["env"] = env
    if spec.env_from:
        container["envFrom"] = _dump(spec.env_from)
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(by_alias=True, exclude_none=True)
    container["volumeMounts"] = [
        *_dump(spec.volume_mounts or []),
        {"name": RESERVED_VOLUME, "mountPath": tokens.MOUNT_PATH, "readOnly": True},
    ]
    template = spec.template.spec if spec.template is not None else None
    pod_spec: dict[str, Any] = {}
    if template is not None:
        pod_spec.update(template.model_dump(by_alias=True, exclude_none=True))
    # The restricted profile wins over anything the template says (its model offers no field
    # that could weaken it, and this order keeps it so should one be added).
    pod_spec["securityContext"] = {
        **pod_spec.get("securityContext", {}),
        **copy.deepcopy(dict(RESTRICTED_POD)),
    }
    pod_spec["containers"] = [container]
    pod_spec["volumes"] = [
        *pod_spec.get("volumes", []),
        {
            "name": RESERVED_VOLUME,
            "secret": {"secretName": tokens.secret_name(name), "defaultMode": 0o444},
        },
    ]
    if spec.service_account_name:
        # Its token is mounted as the ServiceAccount itself says (its own
        # automountServiceAccountToken), so an account that opted out stays out.
        pod_spec["serviceAccountName"] = spec.service_account_name
    else:
        # Least privilege: workers that name no ServiceAccount get no API token (the
        # namespace's `default` account would otherwise be mounted).
        pod_spec["automountServiceAccountToken"] = False
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(pool),
        "spec": {
            "selector": {"matchLabels": {POOL: name}},
            "template": {"metadata": {"labels": labels(name)}, "spec": pod_spec},
        },
    }
    if replicas is not None and spec.scaling is ScalingMode.BATON:
        body["spec"]["replicas"] = replicas
    return body


def service(pool: Mapping[str, Any], spec: WorkerPoolSpec) -> dict[str, Any]:
    """The pool's Service: `http://<pool>.<namespace>.svc:<port>` reaches its workers."""
    name = pool["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(pool),
        "spec": {
            "selector": {POOL: name},
            "ports": [
                {"name": "tasks", "port": spec.port, "targetPort": "tasks", "protocol": "TCP"}
            ],
        },
    }


def observed_replicas(deployment_body: Mapping[str, Any] | None) -> tuple[int, int]:
    """(replicas, ready replicas) of a Deployment as last observed; (0, 0) without one."""
    if not deployment_body:
        return 0, 0
    status = deployment_body.get("status") or {}
    return int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0)


def condition(
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    *,
    now: str,
    previous: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A condition whose `lastTransitionTime` moves only when its status changes
    (`baton.api.conditions.set_condition`, as for every condition Baton writes)."""
    merged = set_condition(previous or [], kind, ok, reason, message, now=now)
    return next(c for c in merged if c["type"] == kind)


def status(
    pool: Mapping[str, Any],
    spec: WorkerPoolSpec | None,
    *,
    deployment_body: Mapping[str, Any] | None,
    desired: int,
    backlog: int,
    in_flight: int,
    now: str,
    last_scale_time: str | None = None,
    blocked: Blocked | None = None,
) -> dict[str, Any]:
    """The pool's status: replicas observed and desired, backlog, in flight, and a Ready
    condition saying whether workers can take tasks (and why not). `blocked` is why the
    pool's objects cannot be applied (a foreign object holding a name, a refused
    ServiceAccount)."""
    previous = list((pool.get("status") or {}).get("conditions") or [])
    if blocked is not None:
        replicas = ready = 0
        ready_condition = condition(
            "Ready", False, blocked.reason, blocked.message, now=now, previous=previous
        )
    elif spec is None or spec.image is None:
        replicas = ready = 0
        ready_condition = condition(
            "Ready",
            True,
            "ExternalEndpoint",
            f"tasks go to {spec.endpoint if spec else None}",
            now=now,
            previous=previous,
        )
    else:
        replicas, ready = observed_replicas(deployment_body)
        if ready > 0:
            ready_condition = condition(
                "Ready",
                True,
                "WorkersReady",
                f"{ready} worker(s) ready",
                now=now,
                previous=previous,
            )
        elif desired == 0 and replicas == 0:
            ready_condition = condition(
                "Ready",
                False,
                "ScaledToZero",
                "no workers: the pool is idle; a task scales it up",
                now=now,
                previous=previous,
            )
        else:
            ready_condition = condition(
                "Ready",
                False,
                "NoReadyWorkers",
                f"0 of {replicas} worker(s) ready; tasks wait in the queue",
                now=now,
                previous=previous,
            )
    body: dict[str, Any] = {
        "replicas": replicas,
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "backlog": backlog,
        "inFlight": in_flight,
        "conditions": [ready_condition],
        "observedGeneration": pool["metadata"].get("generation"),
    }
    if last_scale_time is not None:
        body["lastScaleTime"] = last_scale_time
    return body
