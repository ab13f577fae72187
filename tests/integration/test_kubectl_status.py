"""kubectl alone is enough to follow Baton's resources: `kubectl wait --for=condition=...` on
runs, Workflows and WorkerPools, `kubectl get -l` by workflow and phase, `-o wide` columns."""

from __future__ import annotations

import json

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import FAST_RETRY, baton, http, run, wait_until, worker_pool, workflow
from scrape import value

SUCCEEDS = [{"name": "note", "set": {"done": True}}]
FAILS = [{"name": "charge", "fail": {"error": "CardDeclined", "message": "no funds"}}]


def wait(runs: Runs, *args: str) -> str:
    """`kubectl wait -n <namespace> ... --timeout=60s`; its stdout."""
    return runs.cluster.kubectl("wait", "-n", runs.namespace, *args, "--timeout=60s").stdout


def conditions(runs: Runs, name: str) -> dict[str, dict[str, object]]:
    return {c["type"]: c for c in runs.status(name).get("conditions") or []}


def test_kubectl_waits_for_a_run_to_succeed(runs: Runs, operator: OperatorProcess) -> None:
    runs.apply([workflow("ok", SUCCEEDS), run("ok-1", "ok")])
    assert "condition met" in wait(runs, "--for=condition=Succeeded", "workflowrun/ok-1")
    succeeded = conditions(runs, "ok-1")["Succeeded"]
    assert succeeded["reason"] == "Succeeded"
    assert succeeded["observedGeneration"] == runs.get("ok-1")["metadata"]["generation"]


def test_kubectl_waits_for_a_failed_run_to_complete_and_sees_it_did_not_succeed(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([workflow("bad", FAILS), run("bad-1", "bad")])
    wait(runs, "--for=condition=Completed", "workflowrun/bad-1")
    wait(runs, "--for=condition=Succeeded=False", "workflowrun/bad-1")
    succeeded = conditions(runs, "bad-1")["Succeeded"]
    assert succeeded["reason"] == "Failed"
    assert "CardDeclined in step charge: no funds" in str(succeeded["message"])
    # Dated when the run finished (to the second, as Kubernetes dates conditions).
    since = str(succeeded["lastTransitionTime"]).removesuffix("Z")
    assert runs.status("bad-1")["finishedAt"].startswith(since)


def test_a_run_in_flight_has_not_succeeded_nor_completed_yet(
    runs: Runs, operator: OperatorProcess
) -> None:
    steps = [{"name": "approval", "waitForSignal": {"name": "go"}}]
    runs.apply([workflow("gate", steps), run("gate-1", "gate")])
    runs.wait("gate-1", step="approval", step_phase="Waiting")
    found = conditions(runs, "gate-1")
    assert (found["Succeeded"]["status"], found["Completed"]["status"]) == ("Unknown", "False")


def test_kubectl_waits_for_a_run_that_cannot_start_to_be_invalid(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(run("lost-1", "missing"))
    wait(runs, "--for=condition=Invalid", "workflowrun/lost-1")
    assert conditions(runs, "lost-1")["Invalid"]["reason"] == "WorkflowNotFound"


def test_kubectl_waits_for_a_workflow_to_be_ready(runs: Runs, operator: OperatorProcess) -> None:
    runs.apply(workflow("ok", SUCCEEDS))
    wait(runs, "--for=condition=Ready", "workflow/ok")


def test_kubectl_waits_for_a_worker_pool_to_be_ready(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(worker_pool("payments", recorder.url))
    wait(runs, "--for=condition=Ready", "workerpool/payments")


def test_run_conditions_are_a_list_map_keyed_by_type(runs: Runs) -> None:
    crd = json.loads(
        runs.cluster.kubectl("get", "crd", "workflowruns.baton.dev", "-o", "json").stdout
    )
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_kubectl_get_finds_runs_by_phase_and_workflow_labels(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([workflow("ok", SUCCEEDS), workflow("bad", FAILS)])
    runs.apply([run("ok-1", "ok"), run("bad-1", "bad")])
    wait(runs, "--for=condition=Completed", "workflowrun/ok-1", "workflowrun/bad-1")

    def names(*selector: str) -> list[str]:
        listed = runs.cluster.kubectl("get", "bwfr", "-n", runs.namespace, *selector, "-o", "name")
        return listed.stdout.split()

    assert names("-l", "baton.dev/phase=Failed") == ["workflowrun.baton.dev/bad-1"]
    assert names("-l", "baton.dev/phase=Succeeded") == ["workflowrun.baton.dev/ok-1"]
    assert names("-l", "baton.dev/workflow=ok") == ["workflowrun.baton.dev/ok-1"]


def test_kubectl_get_wide_shows_start_duration_and_message(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([workflow("bad", FAILS), run("bad-1", "bad")])
    wait(runs, "--for=condition=Completed", "workflowrun/bad-1")
    header, row = runs.cluster.kubectl(
        "get", "bwfr", "bad-1", "-n", runs.namespace, "-o", "wide"
    ).stdout.splitlines()
    assert header.split()[-3:] == ["STARTED", "DURATION", "MESSAGE"]
    assert runs.status("bad-1")["duration"] in row.split()
    assert "the run ended Failed: CardDeclined in step charge: no funds" in row


def test_baton_get_filters_runs_by_phase_workflow_and_selector(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([workflow("ok", SUCCEEDS), workflow("bad", FAILS)])
    runs.apply([run("ok-1", "ok"), run("bad-1", "bad")])
    wait(runs, "--for=condition=Completed", "workflowrun/ok-1", "workflowrun/bad-1")

    def listed(*args: str) -> list[str]:
        table = baton(runs.cluster, "get", "-n", runs.namespace, *args).stdout.splitlines()
        return [line.split()[0] for line in table[1:]]

    assert listed("--phase", "failed") == ["bad-1"]
    assert listed("--workflow", "ok") == ["ok-1"]
    assert listed("-l", "baton.dev/phase in (Failed,Succeeded)") == ["bad-1", "ok-1"]
    assert (
        "no workflowruns matching"
        in baton(runs.cluster, "get", "-n", runs.namespace, "--phase", "Running").stdout
    )


def test_phase_labels_cost_a_write_per_phase_change_not_per_step(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    steps = [{"name": f"s{i}", "http": http(f"{recorder.url}/s{i}")} for i in range(10)]
    before = operator.metrics()
    runs.apply([workflow("chain", steps), run("chain-1", "chain")])
    wait(runs, "--for=condition=Succeeded", "workflowrun/chain-1")
    after = operator.metrics()

    def moved(resource: str) -> float:
        labels = {"verb": "patch", "resource": resource}
        return value(after, "baton_api_writes_total", **labels) - value(
            before, "baton_api_writes_total", **labels
        )

    # Running when it started, Succeeded when it ended: two, for ten steps.
    assert moved("workflowruns") == 2
    assert runs.get("chain-1")["metadata"]["labels"]["baton.dev/phase"] == "Succeeded"


def run_events(runs: Runs, name: str) -> list[tuple[str, str, str]]:
    """The run's Kubernetes Events: (type, reason, message)."""
    items = json.loads(
        runs.cluster.kubectl(
            "get", "events", "-n", runs.namespace,
            "--field-selector", f"involvedObject.kind=WorkflowRun,involvedObject.name={name}",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    return [(e["type"], e["reason"], e["message"]) for e in items]


def event(runs: Runs, name: str, reason: str) -> tuple[str, str, str]:
    def found() -> tuple[str, str, str] | None:
        return next((e for e in run_events(runs, name) if e[1] == reason), None)

    result: tuple[str, str, str] = wait_until(f"a {reason} Event of {name}", found)
    return result


def test_a_failed_run_has_a_warning_event_naming_the_error(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([workflow("bad", FAILS), run("bad-1", "bad")])
    wait(runs, "--for=condition=Completed", "workflowrun/bad-1")
    kind, _, message = event(runs, "bad-1", "RunFailed")
    assert kind == "Warning"
    assert message == "the run ended Failed: CardDeclined in step charge: no funds"


def test_a_compensated_run_has_a_warning_event(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    steps = [
        {
            "name": "reserve",
            "http": http(f"{recorder.url}/reserve"),
            "compensate": {"http": http(f"{recorder.url}/release")},
        },
        *FAILS,
    ]
    runs.apply([workflow("saga", steps), run("saga-1", "saga")])
    wait(runs, "--for=condition=Completed", "workflowrun/saga-1")
    assert runs.status("saga-1")["phase"] == "Compensated"
    assert event(runs, "saga-1", "RunCompensated")[0] == "Warning"


def test_a_cancelled_run_has_a_normal_event(runs: Runs, operator: OperatorProcess) -> None:
    steps = [{"name": "approval", "waitForSignal": {"name": "go"}}]
    runs.apply([workflow("gate", steps), run("gate-1", "gate")])
    runs.wait("gate-1", step="approval", step_phase="Waiting")
    runs.cluster.kubectl(
        "patch", "workflowrun", "gate-1", "-n", runs.namespace,
        "--type", "merge", "-p", '{"spec":{"cancel":true}}',
    )  # fmt: skip
    wait(runs, "--for=condition=Completed", "workflowrun/gate-1")
    assert event(runs, "gate-1", "RunCancelled")[0] == "Normal"


def test_a_retried_attempt_has_a_warning_event_with_the_error(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/flaky", Reply(status=503), Reply(body={"ok": True}))
    steps = [
        {
            "name": "call",
            "http": http(f"{recorder.url}/flaky"),
            "retry": {"maxAttempts": 3, **FAST_RETRY},
        }
    ]
    runs.apply([workflow("flaky", steps), run("flaky-1", "flaky")])
    wait(runs, "--for=condition=Succeeded", "workflowrun/flaky-1")
    kind, _, message = event(runs, "flaky-1", "StepRetrying")
    assert kind == "Warning"
    assert message.startswith("step call attempt 1 failed (HttpError")
    assert "; attempt 2 at " in message
    assert [e[1] for e in run_events(runs, "flaky-1")].count("StepRetrying") == 1
