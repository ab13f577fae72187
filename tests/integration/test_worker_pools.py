"""WorkerPools on the real control plane: the operator owns each pool's Deployment and
Service and scales the Deployment from the backlog (kwok makes its pods Ready), while real
`baton-worker` processes started here, reached through the pool's `endpoint`, run the tasks."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterkit import Cluster, Runs
from operator_process import OperatorProcess
from runkit import history, jsonpath, run, wait_created, wait_until, worker_pool, workflow
from scrape import free_port, value

pytestmark = pytest.mark.timeout(240)

HERE = Path(__file__).parent


class WorkerProcess:
    """`baton-worker pool_activities:worker` on 127.0.0.1."""

    def __init__(self, port: int, ledger: Path, log: Path, tokens: Path | None = None) -> None:
        self.port = port
        self.ledger = ledger
        self.log = log
        self.tokens = tokens
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        command = [sys.executable, "-m", "baton_activities.cli", "pool_activities:worker"]
        command += ["--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.tokens is not None:
            command += ["--tokens", str(self.tokens)]
        env = {**os.environ, "BATON_TEST_LEDGER": str(self.ledger)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "baton-worker did not start"
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)


class Workers:
    """The worker processes of one test, sharing its ledger and log; all killed after it."""

    def __init__(self, tmp_path: Path) -> None:
        self.ledger = tmp_path / "ledger"
        self.log = tmp_path / "worker.log"
        self.started: list[WorkerProcess] = []

    def start(self, port: int | None = None, tokens: Path | None = None) -> WorkerProcess:
        """A worker on `port` (a free one by default), serving once it answers /healthz;
        with `tokens`, it accepts only the bearer tokens of that directory's files."""
        worker = WorkerProcess(port or free_port(), self.ledger, self.log, tokens).start()
        self.started.append(worker)
        return worker

    def effects(self) -> list[str]:
        """The ledger's lines: one per effect applied."""
        return self.ledger.read_text().splitlines() if self.ledger.exists() else []


class TokenCopy:
    """Plays the kubelet for a worker outside the cluster: copies the keys of a pool's token
    Secret into a directory, again and again, as a mounted Secret volume is refreshed."""

    def __init__(self, cluster: Cluster, namespace: str, pool: str, directory: Path) -> None:
        self.cluster, self.namespace, self.pool = cluster, namespace, pool
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def secret(self) -> dict[str, str]:
        """The token Secret's keys, decoded; {} until it exists."""
        found = self.cluster.kubectl(
            "get", "secret", f"{self.pool}-worker-token", "-n", self.namespace, "-o", "json",
            check=False,
        )  # fmt: skip
        if found.returncode != 0:
            return {}
        data = json.loads(found.stdout).get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def copy(self) -> None:
        keys = self.secret()
        for key in ("current", "next", "previous"):
            path = self.directory / key
            if key in keys:
                path.write_text(keys[key])
            else:
                path.unlink(missing_ok=True)

    def _loop(self) -> None:
        while not self.stop.wait(0.3):
            self.copy()

    def __enter__(self) -> TokenCopy:
        wait_until("the pool's token Secret", lambda: bool(self.secret()), 60)
        self.copy()
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """`workers.start()` starts a worker process; all are killed after the test."""
    started = Workers(tmp_path)
    yield started
    for worker in started.started:
        worker.stop()


def pool(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    """A pool whose Deployment Baton scales (kwok runs its pods) while `endpoint` does the work."""
    return worker_pool(name, endpoint, image="registry.example/realestate-worker:0.1", **spec)


def replicas(cluster: Cluster, namespace: str, name: str) -> tuple[int, int]:
    """The Deployment's (spec.replicas, status.readyReplicas)."""
    text = jsonpath(
        cluster, namespace, "deployment", name, "{.spec.replicas} {.status.readyReplicas}"
    )
    want, _, ready = text.partition(" ")
    return int(want or 0), int(ready or 0)


def test_backlog_scales_the_deployment_up_and_an_idle_pool_back_to_zero(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    worker = workers.start()
    cluster, namespace = runs.cluster, runs.namespace
    parcels = [f"parcel-{n}" for n in range(6)]
    runs.apply(
        [
            pool(
                "appraisers",
                worker.url,
                minReplicas=0,
                maxReplicas=3,
                tasksPerReplica=2,
                scaleDownStabilization="2s",
                idleTimeout="3s",
            ),
            workflow(
                "appraise-all",
                [
                    {
                        "name": "each",
                        "forEach": {
                            "items": "input.parcels",
                            "concurrency": 6,
                            "step": {
                                "name": "appraise",
                                "worker": {
                                    "pool": "appraisers",
                                    "activity": "appraise",
                                    "input": {"parcel": "${{ item }}", "seconds": 3},
                                },
                            },
                        },
                    }
                ],
            ),
        ]
    )
    # The pool's Deployment and Service exist, owned by the pool, at zero replicas.
    wait_until(
        "the pool's Deployment",
        lambda: (
            cluster.kubectl(
                "get", "deployment", "appraisers", "-n", namespace, check=False
            ).returncode
            == 0
        ),
    )
    owner = jsonpath(
        cluster, namespace, "deployment", "appraisers", "{.metadata.ownerReferences[0].kind}"
    )
    assert owner == "WorkerPool"
    assert jsonpath(cluster, namespace, "service", "appraisers", "{.spec.ports[0].port}") == "8080"
    assert replicas(cluster, namespace, "appraisers")[0] == 0

    runs.apply(run("appraise-1", "appraise-all", {"parcels": parcels}))
    labels = {"namespace": namespace, "pool": "appraisers"}

    def gauge(name: str) -> float:
        return value(operator.metrics(), f"baton_pool_{name}", **labels)

    # Six tasks queued or in flight (none takes less than 3 s), on /metrics as well.
    wait_until("6 tasks on /metrics", lambda: gauge("backlog") + gauge("in_flight") == 6, 30)
    # 6 tasks, 2 per worker: 3 workers, made Ready by kwok; then the tasks run.
    wait_until("3 ready workers", lambda: replicas(cluster, namespace, "appraisers") == (3, 3), 60)
    status = runs.wait("appraise-1", timeout=90)
    assert status["phase"] == "Succeeded", status
    assert len(workers.effects()) == 6
    # Idle: after the stabilisation window and the idle timeout, back to zero.
    wait_until("scaled to zero", lambda: replicas(cluster, namespace, "appraisers")[0] == 0, 60)
    bwp = jsonpath(
        cluster,
        namespace,
        "workerpool",
        "appraisers",
        "{.status.desiredReplicas} {.status.backlog} {.status.inFlight}",
    )
    assert bwp == "0 0 0"
    # Each change of the Deployment's replicas is counted, and the gauges follow the status.
    samples = operator.metrics()
    assert value(samples, "baton_pool_scale_changes_total", direction="up", **labels) >= 1
    assert value(samples, "baton_pool_scale_changes_total", direction="down", **labels) >= 1
    wait_until("idle gauges", lambda: gauge("desired_replicas") + gauge("ready_replicas") == 0)
    assert gauge("backlog") + gauge("in_flight") == 0


def test_a_worker_killed_mid_task_is_retried_and_its_effect_happens_once(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    port = free_port()
    first = workers.start(port)
    runs.apply(
        [
            pool("registry", first.url, minReplicas=1, maxReplicas=1),
            workflow(
                "transfer",
                [
                    {
                        "name": "transfer",
                        "worker": {
                            "pool": "registry",
                            "activity": "transfer",
                            "input": {"parcel": "parcel-17", "seconds": 5},
                        },
                        # Retried until the second worker is up (tens of seconds on a busy
                        # machine).
                        "retry": {
                            "maxAttempts": 40,
                            "initialInterval": "500ms",
                            "backoffCoefficient": 1.5,
                            "maxInterval": "2s",
                        },
                    }
                ],
            ),
            run("transfer-1", "transfer"),
        ]
    )
    wait_until("the transfer's effect", workers.effects, 60)
    first.signal(signal.SIGKILL)
    workers.start(port)
    status = runs.wait("transfer-1", timeout=90)
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["transfer"]["attempts"] >= 2
    [effect] = workers.effects()  # attempt 2 found attempt 1's transfer
    assert effect.startswith("transferred ")


def test_heartbeats_keep_a_long_task_alive_and_a_hung_worker_times_out(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    worker = workers.start()
    step = {
        "name": "survey",
        "worker": {"pool": "surveyors", "activity": "survey", "input": {"seconds": 4}},
        "timeout": {"heartbeat": "1500ms", "startToClose": "1m"},
        "retry": {"maxAttempts": 1},
    }
    runs.apply(
        [
            pool("surveyors", worker.url, minReplicas=1, maxReplicas=1),
            workflow("survey", [step]),
            run("survey-1", "survey"),
        ]
    )
    status = runs.wait("survey-1", timeout=60)
    assert status["phase"] == "Succeeded", status  # 4 s of work, heartbeats every 0.2 s

    runs.apply(run("survey-2", "survey"))
    runs.wait("survey-2", step="survey", step_phase="Running", timeout=60)
    time.sleep(0.5)
    worker.signal(signal.SIGSTOP)  # the worker hangs: no more heartbeats
    status = runs.wait("survey-2", timeout=60)
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "Timeout"
    # The heartbeat timer, not startToClose (1 min): the hung worker never answers.
    assert status["error"]["details"]["kind"] == "heartbeat"


def test_a_task_waiting_in_the_queue_does_not_use_up_its_start_to_close(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    worker = workers.start()
    # One slot, three 2-second tasks: the third waits about 4 s in the queue, then runs 2 s,
    # within the 5 s startToClose that counts from when it is sent (not from when it queued).
    step = {
        "name": "each",
        "forEach": {
            "items": "input.parcels",
            "concurrency": 3,
            "step": {
                "name": "appraise",
                "worker": {
                    "pool": "single",
                    "activity": "appraise",
                    "input": {"parcel": "${{ item }}", "seconds": 2},
                },
                "timeout": {"startToClose": "5s"},
                "retry": {"maxAttempts": 1},
            },
        },
    }
    runs.apply(
        [
            worker_pool("single", worker.url, maxReplicas=1, tasksPerReplica=1),
            workflow("appraise-in-turn", [step]),
            run("in-turn-1", "appraise-in-turn", {"parcels": ["a", "b", "c"]}),
        ]
    )
    status = runs.wait("in-turn-1", timeout=90)
    assert status["phase"] == "Succeeded", status
    assert len(workers.effects()) == 3


def test_a_run_applied_before_its_pool_waits_for_the_pool(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    step = {
        "name": "appraise",
        "worker": {"pool": "late", "activity": "appraise", "input": {"parcel": "p", "seconds": 0}},
        "timeout": {"scheduleToClose": "10m"},
    }
    runs.apply([workflow("early", [step]), run("early-1", "early")])

    def told() -> str:
        return cluster.kubectl(
            "get", "events", "-n", namespace, "-o", "jsonpath={.items[*].message}",
            "--field-selector", "involvedObject.name=early-1,reason=WorkerPoolNotFound",
        ).stdout  # fmt: skip

    message = wait_until("the run told the pool is missing", told)
    assert f"WorkerPool {namespace}/late, which does not exist" in message
    assert runs.status("early-1")["steps"]["appraise"]["phase"] == "Running"

    worker = workers.start()
    runs.apply(worker_pool("late", worker.url, maxReplicas=1))
    status = runs.wait("early-1", timeout=60)
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["appraise"]["attempts"] == 1  # waited, not retried


def test_heartbeats_are_committed_about_once_per_half_timeout_not_once_each(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    worker = workers.start()
    step = {
        "name": "survey",
        "worker": {"pool": "surveyors", "activity": "survey", "input": {"seconds": 6}},
        "timeout": {"heartbeat": "2s"},
    }
    runs.apply(
        [
            pool("surveyors", worker.url, minReplicas=1, maxReplicas=1),
            workflow("survey", [step]),
            run("survey-1", "survey"),
        ]
    )
    status = runs.wait("survey-1", timeout=60)
    assert status["phase"] == "Succeeded", status
    events = history(runs.cluster, runs.namespace, "survey-1")
    beats = [e for e in events if e["type"] == "ActivityHeartbeat"]
    assert len(beats) >= 15  # one each 0.2 s for 6 s, on a machine that keeps up
    # All of them are in the history, but in few writes: one per second or so (half the
    # 2 s timeout), plus the run's start and end, instead of one per heartbeat.
    assert status["history"]["batches"] <= 12, status["history"]


def test_an_operator_killed_while_a_task_heartbeats_ends_the_run_right_and_the_effect_once(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    worker = workers.start()
    step = {
        "name": "inspect",
        "worker": {
            "pool": "inspectors",
            "activity": "inspect",
            "input": {"parcel": "p-9", "seconds": 5},
        },
        "timeout": {"heartbeat": "3s"},
        # A restart slower than the heartbeat timeout times the attempt out: it is retried.
        "retry": {"maxAttempts": 5, "initialInterval": "1s"},
    }
    runs.apply(
        [
            pool("inspectors", worker.url, minReplicas=1, maxReplicas=1),
            workflow("inspect", [step]),
            run("inspect-1", "inspect"),
        ]
    )
    wait_until("the inspection's effect", workers.effects, 60)
    time.sleep(1.5)  # heartbeats folded, some of them not yet committed
    operator.kill()
    operator.start()
    status = runs.wait("inspect-1", timeout=120)
    assert status["phase"] == "Succeeded", status
    [effect] = workers.effects()  # re-sent or retried: applied once
    assert effect.startswith("inspected ")


def test_a_pool_named_like_an_existing_service_leaves_it_untouched_and_says_so(
    runs: Runs, operator: OperatorProcess
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "billing"},
        "spec": {"selector": {"app": "billing-api"}, "ports": [{"port": 80}]},
    }
    runs.apply(theirs)
    before = cluster.kubectl("get", "service", "billing", "-n", namespace, "-o", "json").stdout
    runs.apply(pool("billing", "http://127.0.0.1:9", minReplicas=1))
    cluster.kubectl(
        "wait", "-n", namespace, "workerpool/billing", "--timeout=60s",
        "--for=jsonpath={.status.conditions[0].reason}=NameConflict",
    )  # fmt: skip
    message = jsonpath(
        cluster, namespace, "workerpool", "billing", "{.status.conditions[0].message}"
    )
    assert f"Service {namespace}/billing exists" in message
    assert "rename the WorkerPool" in message

    def warned() -> str:
        return cluster.kubectl(
            "get", "events", "-n", namespace, "-o", "jsonpath={.items[*].message}",
            "--field-selector", "involvedObject.name=billing,reason=NameConflict,type=Warning",
        ).stdout  # fmt: skip

    assert f"Service {namespace}/billing exists" in wait_until("a Warning Event", warned)
    after = cluster.kubectl("get", "service", "billing", "-n", namespace, "-o", "json").stdout
    service = json.loads(after)
    assert service["spec"]["selector"] == {"app": "billing-api"}
    assert "ownerReferences" not in service["metadata"]  # deleting the pool cannot delete it
    assert (
        service["metadata"]["resourceVersion"] == json.loads(before)["metadata"]["resourceVersion"]
    )
    found = cluster.kubectl("get", "deployment", "billing", "-n", namespace, check=False)
    assert found.returncode != 0  # nothing created beside it either


def test_a_pool_naming_a_service_account_the_operator_does_not_allow_gets_no_workers(
    runs: Runs, operator: OperatorProcess
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    runs.apply(pool("reports", "http://127.0.0.1:9", serviceAccountName="namespace-admin"))
    cluster.kubectl(
        "wait", "-n", namespace, "workerpool/reports", "--timeout=60s",
        "--for=jsonpath={.status.conditions[0].reason}=PolicyDenied",
    )  # fmt: skip
    message = jsonpath(
        cluster, namespace, "workerpool", "reports", "{.status.conditions[0].message}"
    )
    assert "ServiceAccount 'namespace-admin' is not allowed" in message
    assert "operator.podPolicy.serviceAccounts" in message
    found = cluster.kubectl("get", "deployment", "reports", "-n", namespace, check=False)
    assert found.returncode != 0


def test_a_pool_whose_env_names_a_secret_not_open_to_runs_gets_no_workers_until_it_is(
    runs: Runs, operator: OperatorProcess
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    cluster.kubectl(
        "create", "secret", "generic", "db", "--from-literal=password=p", "-n", namespace
    )
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    runs.apply(pool("reports", "http://127.0.0.1:9", env=env))
    cluster.kubectl(
        "wait", "-n", namespace, "workerpool/reports", "--timeout=60s",
        "--for=jsonpath={.status.conditions[0].reason}=SecretNotAllowed",
    )  # fmt: skip
    message = jsonpath(
        cluster, namespace, "workerpool", "reports", "{.status.conditions[0].message}"
    )
    assert "baton.dev/workflow-secret=true" in message
    assert cluster.kubectl("get", "deployment", "reports", "-n", namespace, check=False).returncode

    cluster.kubectl("label", "secret", "db", "baton.dev/workflow-secret=true", "-n", namespace)
    wait_created(cluster, namespace, "deployment", "reports")


APPRAISE_ONE = [
    {
        "name": "appraise",
        "worker": {
            "pool": "appraisers",
            "activity": "appraise",
            "input": {"parcel": "${{ input.parcel }}", "seconds": 0.5},
        },
    }
]


def test_a_worker_refuses_a_task_without_the_pools_token_and_runs_the_operators(
    runs: Runs, operator: OperatorProcess, workers: Workers, tmp_path: Path
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    tokens = tmp_path / "tokens"
    worker = workers.start(tokens=tokens)
    runs.apply([worker_pool("appraisers", worker.url), workflow("appraise-one", APPRAISE_ONE)])
    with TokenCopy(cluster, namespace, "appraisers", tokens) as copy:
        owner = jsonpath(
            cluster, namespace, "secret", "appraisers-worker-token",
            "{.metadata.ownerReferences[0].kind}",
        )  # fmt: skip
        assert owner == "WorkerPool"
        # Any other caller — a pod of the cluster, say — is refused, and nothing runs.
        body = {"input": {"parcel": "p0", "seconds": 0}, "idempotencyKey": "intruder/1"}
        url = f"{worker.url}/activities/appraise"
        assert httpx.post(url, json=body, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.post(url, json=body, headers=wrong, timeout=10).status_code == 401
        assert workers.effects() == []
        # The operator's task carries the token.
        runs.apply(run("appraise-1", "appraise-one", {"parcel": "p1"}))
        status = runs.wait("appraise-1", timeout=90)
        assert status["phase"] == "Succeeded", status
        assert len(workers.effects()) == 1
        assert status["steps"]["appraise"]["attempts"] == 1
        assert copy.secret()["current"]


def test_a_token_rotation_refuses_no_task(
    runs: Runs, operator: OperatorProcess, workers: Workers, tmp_path: Path
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    tokens = tmp_path / "tokens"
    worker = workers.start(tokens=tokens)
    runs.apply(
        [
            worker_pool("appraisers", worker.url, tokenPropagation="3s"),
            workflow("appraise-one", APPRAISE_ONE),
        ]
    )
    with TokenCopy(cluster, namespace, "appraisers", tokens) as copy:
        first = copy.secret()["current"]
        cluster.kubectl(
            "annotate", "workerpool", "appraisers", "-n", namespace,
            "baton.dev/rotate-token=1",
        )  # fmt: skip
        # Runs keep coming through the three stages of the rotation.
        names = []
        deadline = time.monotonic() + 90
        while True:
            keys = copy.secret()
            if keys.get("current") not in (None, first) and "previous" not in keys:
                break
            assert time.monotonic() < deadline, keys
            name = f"appraise-{len(names)}"
            runs.apply(run(name, "appraise-one", {"parcel": name}))
            names.append(name)
            time.sleep(0.5)
        assert len(names) >= 4
        for name in names:
            status = runs.wait(name, timeout=90)
            assert status["phase"] == "Succeeded", status
            # Not one attempt was refused: each step ran once.
            assert status["steps"]["appraise"]["attempts"] == 1, status
        # The old token is refused now.
        body = {"input": {"parcel": "x", "seconds": 0}, "idempotencyKey": "old/1"}
        old = {"Authorization": f"Bearer {first}"}
        url = f"{worker.url}/activities/appraise"
        wait_until(
            "the old token refused",
            lambda: httpx.post(url, json=body, headers=old, timeout=10).status_code == 401,
        )


def test_a_pod_templates_fields_reach_the_deployment(runs: Runs, operator: OperatorProcess) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    cluster.kubectl("create", "secret", "generic", "psp", "--from-literal=key=k", "-n", namespace)
    cluster.kubectl("label", "secret", "psp", "baton.dev/workflow-secret=true", "-n", namespace)
    template = {
        "nodeSelector": {"pool": "workers"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "workers", "effect": "NoSchedule"}
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 1,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"baton.dev/pool": "reports"}},
                        },
                    }
                ]
            }
        },
        "imagePullSecrets": [{"name": "registry"}],
        "securityContext": {"runAsUser": 10001, "fsGroup": 2000},
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "certs", "secret": {"secretName": "psp"}},
        ],
        "terminationGracePeriodSeconds": 600,
    }
    runs.apply(
        pool(
            "reports",
            "http://127.0.0.1:9",
            template={"spec": template},
            envFrom=[{"secretRef": {"name": "psp"}, "prefix": "PSP_"}],
            volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
        )
    )
    wait_created(cluster, namespace, "deployment", "reports")
    found = json.loads(
        cluster.kubectl("get", "deployment", "reports", "-n", namespace, "-o", "json").stdout
    )
    pod = found["spec"]["template"]["spec"]
    for field in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        assert pod[field] == template[field], field
    assert pod["terminationGracePeriodSeconds"] == 600
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["runAsNonRoot"] is True
    names = [v["name"] for v in pod["volumes"]]
    assert names == ["scratch", "certs", "worker-token"]
    [container] = pod["containers"]
    assert container["envFrom"] == [{"prefix": "PSP_", "secretRef": {"name": "psp"}}]
    assert {"name": "scratch", "mountPath": "/scratch"} in container["volumeMounts"]


def test_a_pool_whose_env_from_names_a_secret_not_open_to_runs_gets_no_workers(
    runs: Runs, operator: OperatorProcess
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    cluster.kubectl(
        "create", "secret", "generic", "admin", "--from-literal=password=p", "-n", namespace
    )
    runs.apply(pool("reports", "http://127.0.0.1:9", envFrom=[{"secretRef": {"name": "admin"}}]))
    cluster.kubectl(
        "wait", "-n", namespace, "workerpool/reports", "--timeout=60s",
        "--for=jsonpath={.status.conditions[0].reason}=SecretNotAllowed",
    )  # fmt: skip
    message = jsonpath(
        cluster, namespace, "workerpool", "reports", "{.status.conditions[0].message}"
    )
    assert message.startswith("spec.envFrom[0]: ")
    assert cluster.kubectl("get", "deployment", "reports", "-n", namespace, check=False).returncode


def test_a_pool_tolerating_the_control_plane_is_invalid_and_gets_no_workers(
    runs: Runs, operator: OperatorProcess
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    toleration = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}
    runs.apply(
        pool("reports", "http://127.0.0.1:9", template={"spec": {"tolerations": [toleration]}})
    )
    cluster.kubectl(
        "wait", "-n", namespace, "workerpool/reports", "--timeout=60s",
        "--for=jsonpath={.status.conditions[0].reason}=Invalid",
    )  # fmt: skip
    message = jsonpath(
        cluster, namespace, "workerpool", "reports", "{.status.conditions[0].message}"
    )
    assert "spec.template.spec.tolerations.0" in message
    assert "control-plane" in message
    assert cluster.kubectl("get", "deployment", "reports", "-n", namespace, check=False).returncode


def test_a_retried_task_resumes_from_the_last_heartbeat_details(
    runs: Runs, operator: OperatorProcess, workers: Workers
) -> None:
    worker = workers.start()
    step = {
        "name": "load",
        "worker": {"pool": "loaders", "activity": "load", "input": {"rows": 1000}},
        "retry": {"maxAttempts": 2, "initialInterval": "200ms"},
    }
    runs.apply([worker_pool("loaders", worker.url), workflow("load-all", [step])])
    runs.apply(run("load-1", "load-all"))
    status = runs.wait("load-1", timeout=90)
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["load"]["output"] == {"from": 500, "attempt": 2}
