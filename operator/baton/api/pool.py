"""WorkerPool: a Deployment of activity workers behind a Service, its spec and status.

The operator dispatches `worker` activities to a pool over HTTP and, unless scaling is handed
to an external autoscaler, sets the Deployment's replicas from the pool's backlog.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.api.conditions import CONDITIONS_LIST_MAP, Condition
from baton.api.duration import Duration, parse_duration
from baton.api.names import ObjectName
from baton.api.workflow import EnvVar, Model

RESERVED_VOLUME = "worker-token"
"""The name of the volume that mounts the pool's token Secret; a pool's own volumes may not
take it."""

RESERVED_MOUNT = "/var/run/baton"
"""Where the token Secret is mounted (baton.pools.tokens.MOUNT_PATH is under it); a pool's own
volume mounts may not reach into it, nor cover it."""

CONTROL_PLANE_TAINTS = frozenset(
    {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}
)
"""Taint keys a pool's tolerations may not name: workers have no business on control-plane
nodes, next to etcd and the API server."""

Quantity = Annotated[
    str | int,
    Field(description="A Kubernetes quantity, for example `500m`, `2` or `1Gi`."),
]


class ResourceRequirements(Model):
    """Compute resources of each worker container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = Field(
        None, description="Resources the scheduler reserves, for example `cpu: 250m`."
    )
    limits: dict[str, Quantity] | None = Field(
        None, description="Most a container may use, for example `memory: 512Mi`."
    )


class NamedRef(Model):
    """An object of the pool's own namespace, by name."""

    name: ObjectName = Field(description="Its name.")


class EnvFromSource(Model):
    """Every key of a Secret or a ConfigMap as environment variables of the workers."""

    prefix: str | None = Field(None, description="Prepended to each variable's name.")
    secret_ref: NamedRef | None = Field(
        None,
        alias="secretRef",
        description="A Secret of the pool's namespace labelled "
        "`baton.dev/workflow-secret=true` by its owner (the same opt-in as runs' Secrets).",
    )
    config_map_ref: NamedRef | None = Field(
        None, alias="configMapRef", description="A ConfigMap of the pool's namespace."
    )

    @model_validator(mode="after")
    def _one(self) -> EnvFromSource:
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ValueError("envFrom: set exactly one of secretRef and configMapRef")
        return self


class VolumeMount(Model):
    """Where a volume of the pool's template appears in the worker container."""

    name: str = Field(min_length=1, max_length=63, description="The volume's name.")
    mount_path: str = Field(
        alias="mountPath", pattern=r"^/", min_length=2, description="An absolute path."
    )
    read_only: bool | None = Field(None, alias="readOnly", description="Mount it read-only.")


class TaintEffect(StrEnum):
    """What a taint does to pods that do not tolerate it."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(Model):
    """A taint the workers tolerate, as in a Pod spec; never every taint, never the control
    plane's."""

    key: str = Field(
        min_length=1,
        max_length=316,
        description="The taint's key (required: a toleration of every taint is refused).",
    )
    operator: Literal["Equal", "Exists"] = Field("Equal", description="`Equal` or `Exists`.")
    value: str | None = Field(None, description="The taint's value, with `Equal`.")
    effect: TaintEffect | None = Field(None, description="Only taints of this effect.")
    toleration_seconds: int | None = Field(
        None, alias="tolerationSeconds", ge=0, description="With NoExecute: how long to stay."
    )

    @model_validator(mode="after")
    def _allowed(self) -> Toleration:
        if self.key in CONTROL_PLANE_TAINTS:
            raise ValueError(
                f"tolerations: {self.key!r} would let workers onto control-plane nodes; remove it"
            )
        return self


class PodSecurity(Model):
    """The parts of a pod's securityContext a pool may set. Baton adds the restricted
    profile's own (non-root, RuntimeDefault seccomp, no capabilities, no privilege
    escalation) whatever is written here."""

    run_as_user: int | None = Field(
        None, alias="runAsUser", ge=1, description="User id of the workers; never 0 (root)."
    )
    run_as_group: int | None = Field(
        None, alias="runAsGroup", ge=1, description="Group id of the workers; never 0."
    )
    fs_group: int | None = Field(
        None, alias="fsGroup", ge=1, description="Group that owns the pod's volumes; never 0."
    )
    supplemental_groups: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, alias="supplementalGroups", description="More group ids; never 0."
    )


class EmptyDirVolume(Model):
    """Scratch space that lives as long as the pod."""

    medium: Literal["", "Memory"] | None = Field(None, description="`Memory` for tmpfs.")
    size_limit: Quantity | None = Field(None, alias="sizeLimit", description="Its limit.")


class ConfigMapVolume(Model):
    """A ConfigMap of the pool's namespace, as files."""

    name: ObjectName = Field(description="The ConfigMap's name.")


class SecretVolume(Model):
    """A Secret of the pool's namespace, as files: one labelled
    `baton.dev/workflow-secret=true` by its owner."""

    secret_name: ObjectName = Field(alias="secretName", description="The Secret's name.")


class Volume(Model):
    """A volume of the workers: scratch space, a ConfigMap or an opted-in Secret. Host paths,
    claims and projected tokens are not offered (they reach past what the pool's author may
    read)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Its name.",
    )
    empty_dir: EmptyDirVolume | None = Field(None, alias="emptyDir", description="Scratch.")
    config_map: ConfigMapVolume | None = Field(None, alias="configMap", description="Files.")
    secret: SecretVolume | None = Field(None, description="Files of an opted-in Secret.")

    @model_validator(mode="after")
    def _one(self) -> Volume:
        given = [v for v in (self.empty_dir, self.config_map, self.secret) if v is not None]
        if len(given) != 1:
            raise ValueError(
                f"volume {self.name!r}: set exactly one of emptyDir, configMap and secret"
            )
        if self.name == RESERVED_VOLUME:
            raise ValueError(
                f"volume name {RESERVED_VOLUME!r} is Baton's (the pool's token); rename it"
            )
        return self


class PodSpecTemplate(Model):
    """The pod-level fields a pool may set on its workers: where they run, what they pull
    with, who they run as, what they mount. Fields a tenant could turn against the cluster
    (host namespaces, privileged containers, priority classes, host paths, claims, pod labels
    a Service could select) are not offered; docs/install.md explains each choice."""

    node_selector: dict[str, str] | None = Field(
        None, alias="nodeSelector", description="Node labels the workers' nodes must carry."
    )
    tolerations: list[Toleration] | None = Field(None, description="Taints the workers tolerate.")
    affinity: dict[str, Any] | None = Field(
        None,
        description="Node and pod (anti-)affinity, as in a Pod spec; the API server checks "
        "it when the Deployment is applied (the pool's Ready condition says what it refused).",
    )
    topology_spread_constraints: list[dict[str, Any]] | None = Field(
        None,
        alias="topologySpreadConstraints",
        description="How workers spread over zones and nodes, as in a Pod spec.",
    )
    image_pull_secrets: list[NamedRef] | None = Field(
        None,
        alias="imagePullSecrets",
        description="Registry credentials of the pool's namespace the kubelet pulls the image "
        "with (the workers never read them).",
    )
    security_context: PodSecurity | None = Field(
        None, alias="securityContext", description="User and groups of the workers."
    )
    volumes: list[Volume] | None = Field(None, description="Volumes the worker may mount.")
    termination_grace_period_seconds: int | None = Field(
        None,
        alias="terminationGracePeriodSeconds",
        ge=0,
        description="Seconds a stopped worker gets to finish its tasks (set it above your "
        "longest activity; `baton-worker --graceful-timeout` to match).",
    )


class PodTemplate(Model):
    """The workers' pod, as a Deployment's `template` would say it (only `spec`)."""

    spec: PodSpecTemplate = Field(description="Pod-level fields of the workers.")


class ScalingMode(StrEnum):
    """Who sets the Deployment's replicas."""

    BATON = "baton"
    EXTERNAL = "external"


class WorkerPoolSpec(Model):
    """The workers of a pool and how Baton scales them."""

    image: str | None = Field(
        None,
        min_length=1,
        description="Container image of the workers. Required unless `endpoint` is set.",
    )
    command: list[str] | None = Field(None, description="Entrypoint override.")
    args: list[str] | None = Field(None, description="Arguments of the entrypoint.")
    env: list[EnvVar] | None = Field(
        None,
        description="Environment variables of the workers; a `secretKeyRef` must name a "
        "Secret labelled `baton.dev/workflow-secret=true`.",
    )
    env_from: list[EnvFromSource] | None = Field(
        None,
        alias="envFrom",
        description="Every key of a ConfigMap, or of a Secret labelled "
        "`baton.dev/workflow-secret=true`, as environment variables.",
    )
    volume_mounts: list[VolumeMount] | None = Field(
        None, alias="volumeMounts", description="Volumes of `template.spec.volumes` to mount."
    )
    template: PodTemplate | None = Field(
        None,
        description="Pod-level fields of the workers: nodeSelector, tolerations, affinity, "
        "topologySpreadConstraints, imagePullSecrets, securityContext, volumes, "
        "terminationGracePeriodSeconds.",
    )
    resources: ResourceRequirements | None = Field(
        None, description="Compute resources of each worker container."
    )
    service_account_name: str | None = Field(
        None,
        alias="serviceAccountName",
        description="ServiceAccount the workers run as, one the operator's pod policy allows; "
        "its token is mounted as the account says. Without it the workers get no Kubernetes "
        "API token at all.",
    )
    port: int = Field(
        8080, ge=1, le=65535, description="Port the workers serve their HTTP task API on."
    )
    min_replicas: int = Field(
        0,
        alias="minReplicas",
        ge=0,
        description="Fewest workers; 0 lets an idle pool scale to zero.",
    )
    max_replicas: int = Field(10, alias="maxReplicas", ge=1, description="Most workers.")
    tasks_per_replica: int = Field(
        4,
        alias="tasksPerReplica",
        ge=1,
        description="Tasks one worker runs at once; Baton asks for "
        "ceil((backlog + in flight) / tasksPerReplica) workers, within min and max.",
    )
    scale_down_stabilization: Duration = Field(
        "5m",
        alias="scaleDownStabilization",
        description="How long the backlog must stay low before workers are removed.",
    )
    idle_timeout: Duration = Field(
        "10m",
        alias="idleTimeout",
        description="How long a pool must be idle (no backlog, nothing in flight) before it "
        "scales to `minReplicas` when that is 0.",
    )
    scaling: ScalingMode = Field(
        ScalingMode.BATON,
        description="`baton`: Baton sets the Deployment's replicas from the backlog. `external`: "
        "an autoscaler of your own (a HorizontalPodAutoscaler, KEDA) owns replicas and Baton "
        "never writes them.",
    )
    endpoint: str | None = Field(
        None,
        min_length=1,
        pattern=r"^https?://",
        description="Send tasks to this URL instead of the pool's Service: a worker outside "
        "the cluster, for development and tests. Without `image` no Deployment is created; "
        "with it the Deployment is still created and scaled.",
    )

    token_propagation: Duration = Field(
        "90s",
        alias="tokenPropagation",
        description="How long a change of the pool's token Secret takes to reach every "
        "worker (the kubelet's sync period and cache, about a minute by default; longer for "
        "workers outside the cluster that copy it). A token rotation waits this long between "
        "its stages, so no task is refused.",
    )

    @property
    def token_propagation_seconds(self) -> float:
        """`tokenPropagation` in seconds."""
        return parse_duration(self.token_propagation)

    @model_validator(mode="after")
    def _consistent(self) -> WorkerPoolSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed "
                f"maxReplicas ({self.max_replicas})"
            )
        if self.image is None and self.endpoint is None:
            raise ValueError(
                "a pool needs an image (workers Baton runs) or an endpoint (a worker elsewhere)"
            )
        volumes = {v.name for v in (self.template.spec.volumes if self.template else None) or []}
        for mount in self.volume_mounts or []:
            if mount.name not in volumes:
                raise ValueError(
                    f"volumeMounts: {mount.name!r} is not a volume of template.spec.volumes"
                )
            path = mount.mount_path.rstrip("/") + "/"
            if path.startswith(RESERVED_MOUNT + "/") or RESERVED_MOUNT.startswith(path):
                raise ValueError(
                    f"volumeMounts: {mount.mount_path!r} overlaps {RESERVED_MOUNT}, where "
                    "Baton mounts the pool's token; mount it elsewhere"
                )
        return self


class WorkerPoolStatus(Model):
    """What the operator last observed of the pool and decided about it."""

    replicas: int = Field(0, ge=0, description="Workers the Deployment has.")
    ready_replicas: int = Field(0, alias="readyReplicas", ge=0, description="Workers ready.")
    desired_replicas: int = Field(
        0, alias="desiredReplicas", ge=0, description="Workers Baton wants from the backlog."
    )
    backlog: int = Field(0, ge=0, description="Tasks waiting for a free worker.")
    in_flight: int = Field(
        0, alias="inFlight", ge=0, description="Tasks dispatched and not yet finished."
    )
    conditions: list[Condition] | None = Field(
        None,
        json_schema_extra=CONDITIONS_LIST_MAP,
        description="Ready (workers can take tasks) and Invalid (the spec was refused).",
    )
    observed_generation: int | None = Field(
        None, alias="observedGeneration", description="The spec generation this status follows."
    )
    last_scale_time: str | None = Field(
        None, alias="lastScaleTime", description="RFC 3339 time Baton last changed replicas."
    )
