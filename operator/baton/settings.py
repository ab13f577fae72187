"""The operator's settings: one frozen dataclass, a docstring per field, set from the CLI."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from baton.api.labels import SHARD

UNCOMMITTED_JOB_TTL_SECONDS = 7 * 24 * 3600
"""`ttlSecondsAfterFinished` of a Job until its run has committed its outcome. The TTL
controller deletes a finished Job's pod first, and with it the output (the termination
message): a short TTL from the start lost the outputs of Jobs that finished while the operator
was down or far behind, and ran those steps again. Once the outcome is in the run's history the
Job gets `--job-ttl` (`JobExecutor.outcomes_committed`); only an outage of a week loses an
output now."""


@dataclass(frozen=True)
class OperatorSettings:
    """How `baton operator` behaves. Defaults suit a production cluster."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; None uses $KUBECONFIG, ~/.kube/config, or the in-cluster account."""

    peering: str = "baton"
    """Name of the kopf peering object: replicas sharing it run one at a time (active/standby)."""

    standalone: bool = False
    """Run without peering (a single replica, development)."""

    priority: int = 0
    """Peering priority of this replica; the highest alive one is active."""

    peering_lifetime: int = 60
    """Seconds a replica's peering keep-alive stays valid (kopf's `peering.lifetime`): a standby
    takes over at most this long after the active replica died without leaving the peering."""

    allow_link_local_http: bool = False
    """Let HTTP activities reach link-local and cloud-metadata addresses (refused by default)."""

    http_max_connections: int = 100
    """Connection pool size of HTTP activities: at most this many calls are in flight at once
    (worker dispatch has its own pool, `worker_max_connections`)."""

    http_default_timeout: float = 60.0
    """Seconds an HTTP activity's attempt may take when its step sets no `startToClose`. A call
    to a server that never answers must give its connection back some day; 60 s is what most
    proxies and load balancers in front of a service allow anyway (nginx's and an AWS ALB's
    defaults) and Step Functions' limit for HTTP tasks. Longer calls set `startToClose`."""

    http_calls_per_namespace: int = 25
    """HTTP activity calls one namespace may have in flight; more wait, holding no connection.
    Below `http_max_connections`, so one namespace's hung calls leave the others connections."""

    http_calls_per_run: int = 10
    """HTTP activity calls one run (with its child runs) may have in flight; more wait, so one
    run's fan-out does not take its whole namespace's share."""

    worker_max_connections: int = 1000
    """Connection pool size of worker dispatch. A task holds its connection while the activity
    runs (minutes, hours), so this bounds the worker tasks running at once across all pools;
    each pool is bounded by its own capacity (replicas x tasksPerReplica) first."""

    worker_calls_per_namespace: int = 250
    """Worker tasks one namespace may have in flight; more wait after leaving their pool's
    queue, holding no connection. Below `worker_max_connections`, for the same reason as
    `http_calls_per_namespace`."""

    job_ttl_seconds: int = 600
    """A finished Job is deleted by the TTL controller this many seconds after its run has
    recorded its outcome (before that, after `UNCOMMITTED_JOB_TTL_SECONDS`)."""

    pod_service_accounts: tuple[str, ...] = ()
    """ServiceAccounts a Job step or a WorkerPool may name in `serviceAccountName`, as
    shell-style patterns (`ci-*`). Empty by default: whoever creates a run or a pool is not the
    cluster admin, and the account is what the pods may then do in the API
    (baton.executors.podpolicy)."""

    job_pod_annotations: tuple[str, ...] = ()
    """Pod annotation keys a Job step may set in `podAnnotations`, as shell-style patterns
    (`sidecar.istio.io/*`). Empty by default: annotations steer meshes, admission webhooks and
    other tools of the cluster, which are the admin's to open up."""

    history_chunk_bytes: int = 256 * 1024
    """A history ConfigMap is closed and the next one started beyond this size (etcd's object
    limit is 1.5 MiB; staying far below keeps every write small)."""

    offload_bytes: int = 4 * 1024
    """Outputs whose JSON is larger than this go to their own ConfigMap, referenced from status."""

    status_bytes: int = 512 * 1024
    """A status still larger than this after offloading has every output over 128 bytes
    offloaded too: many outputs just under `offload_bytes` must not push the run object (whose
    managedFields grow with its status) past etcd's 1.5 MiB limit."""

    kube_events: bool = True
    """Post Kubernetes Events: each run phase change, each step that fails or will be retried,
    and the run's warnings (see `step_events` for steps that succeed)."""

    step_events: bool = False
    """Also post a Normal Event for each step that succeeds. Off by default: it is one more API
    write per step (a third more than a step's history append and status write, and the Events
    are stored in etcd too), for what the run's status and history already show."""

    status_interval: float = 30.0
    """Seconds a run's status may lag its history: the status (what `kubectl get` shows) is a
    projection of the history, written at once when something a user watches changes (the
    phase, a step starting to wait or failing or backing off, the run's error or conditions, a
    spec change observed) and otherwise at most once per this many seconds per run. The
    history append stays the commit point; a restart folds the history after the status. 0
    writes the status with every batch, as before (one more API write per step)."""

    resumes_in_flight: int = 32
    """Runs resuming at once when many are (an operator's start, a replica becoming the active
    one): the others wait in a queue, the most urgent first (baton.handlers.resumes). Enough
    to keep the API server busy while one resume's CPU is spent; few enough that a run found
    late in kopf's listing with a timer due soon does not wait behind thousands."""

    metrics_port: int = 9090
    """Port of the Prometheus /metrics endpoint; 0 disables it."""

    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """kopf's liveness endpoint for the Pod's probes; None disables it."""

    extra_labels: dict[str, str] = field(default_factory=dict)
    """Labels added to every object the operator creates."""

    shard: str | None = None
    """Handle only WorkflowRuns and WorkerPools labelled `baton.dev/shard=<shard>` (and the Jobs,
    Deployments and child runs made for them, which carry the label too); None handles only
    those without the label. Shards split one cluster's runs between operators."""

    history_key: bytes = b""
    """Key of the HMACs that seal each run's history batches and definition snapshot (read
    from `--history-key-file`, which the chart mounts from a Secret in the operator's
    namespace). Empty: the seals still catch accidental edits, but anyone who has read Baton's
    source can forge them; see docs/architecture.md, "History integrity"."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with these settings, one line each naming the `baton operator` flag."""
        found = []
        for flag, value in (
            ("--http-max-connections", self.http_max_connections),
            ("--http-calls-per-namespace", self.http_calls_per_namespace),
            ("--http-calls-per-run", self.http_calls_per_run),
            ("--worker-max-connections", self.worker_max_connections),
            ("--worker-calls-per-namespace", self.worker_calls_per_namespace),
        ):
            if value < 1:
                found.append(f"{flag} must be at least 1, not {value}")
        if not 0 < self.http_default_timeout < math.inf:
            found.append(
                f"--http-default-timeout must be a positive number of seconds, not "
                f"{self.http_default_timeout}"
            )
        for pool, share in (
            ("--http-max-connections", "--http-calls-per-namespace"),
            ("--worker-max-connections", "--worker-calls-per-namespace"),
        ):
            total = getattr(self, pool[2:].replace("-", "_"))
            limit = getattr(self, share[2:].replace("-", "_"))
            if limit >= total:
                found.append(
                    f"{share} ({limit}) must be below {pool} ({total}): otherwise one "
                    "namespace's calls that never end can take every connection"
                )
        return found

    @property
    def created_labels(self) -> dict[str, str]:
        """Labels of every object the operator creates: `extra_labels` and the shard's."""
        if self.shard is None:
            return dict(self.extra_labels)
        return {**self.extra_labels, SHARD: self.shard}
