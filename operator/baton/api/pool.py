"""WorkerPool: a Deployment of activity workers behind a Service, its spec and status.

The operator dispatches `worker` activities to a pool over HTTP and, unless scaling is handed
to an external autoscaler, sets the Deployment's replicas from the pool's backlog.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from baton.api.conditions import CONDITIONS_LIST_MAP, Condition
from baton.api.duration import Duration
from baton.api.workflow import EnvVar, Model

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
    env: list[EnvVar] | None = Field(None, description="Environment variables of the workers.")
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
