"""What happens around runs: Workflow versions and validity, a missing Workflow, deletion and
garbage collection, the history ConfigMaps and `baton history`, Kubernetes Events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clusterkit import Runs, started_operator
from kubernetes import client
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import (
    baton,
    history,
    http,
    jsonpath,
    kwok,
    run,
    send_signal,
    wait_created,
    wait_until,
    workflow,
)
from scrape import value

from baton.store.snapshots import GENERATION_ANNOTATION, MAC_ANNOTATION

SEAL = (GENERATION_ANNOTATION, MAC_ANNOTATION)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The condition `kind` of a resource when it is True."""
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found["type"] == kind and found["status"] == "True":
            return dict(found)
    return None


def versioned(recorder: Recorder, n: int) -> dict[str, object]:
    """Workflow `versioned` at version `n`: a signal gate, then a call to `/v<n>`."""
    return workflow(
        "versioned",
        [
            {"name": "gate", "waitForSignal": {"name": "go"}},
            {"name": "call", "http": http(f"{recorder.url}/v{n}")},
        ],
    )


def test_editing_a_workflow_leaves_runs_in_flight_on_their_snapshot_and_new_runs_follow_it(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply([versioned(recorder, 1), run("old", "versioned")])
    runs.wait("old", step="gate", step_phase="Waiting")
    runs.apply(versioned(recorder, 2))
    runs.apply(run("new", "versioned"))
    runs.wait("new", step="gate", step_phase="Waiting")
    for name in ("old", "new"):
        send_signal(runs.cluster, runs.namespace, name, "go")
    old, new = runs.wait("old"), runs.wait("new")
    assert (old["phase"], new["phase"]) == ("Succeeded", "Succeeded")
    assert old["definition"]["generation"] == 1
    assert new["definition"]["generation"] == 2
    assert (old["workflowGeneration"], new["workflowGeneration"]) == (1, 2)
    old_uid = runs.get("old")["metadata"]["uid"]
    assert [c.key for c in recorder.calls_to("/v1")] == [f"{old_uid}/call/1"]
    assert len(recorder.calls_to("/v2")) == 1


def test_invalid_workflow_gets_an_invalid_condition_naming_the_step_and_field(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        workflow(
            "broken",
            [
                {"name": "reserve", "http": {"url": "http://inventory/reserve"}},
                {"name": "pay", "needs": ["reserv"], "http": {"url": "http://payments/charge"}},
            ],
        )
    )

    def invalid() -> dict[str, Any] | None:
        obj = runs.api.get_namespaced_custom_object(
            "baton.dev", "v1alpha1", runs.namespace, "workflows", "broken"
        )
        return condition(obj, "Invalid")

    found = wait_until("Workflow broken has an Invalid condition", invalid)
    assert "step 'pay'" in found["message"], found
    assert "needs" in found["message"], found
    assert "reserv" in found["message"], found
    ready = jsonpath(
        runs.cluster,
        runs.namespace,
        "workflow",
        "broken",
        '{.status.conditions[?(@.type=="Ready")].status}',
    )
    assert ready == "False"


def test_a_mistake_below_the_typed_depth_of_the_crd_is_reported_naming_the_field(
    runs: Runs, operator: OperatorProcess
) -> None:
    # Steps four levels down are opaque to the API server (STEP_SCHEMA_DEPTH is 3), so only
    # the operator can refuse this method; its message must still lead to the field.
    step: dict[str, Any] = {"name": "deep", "http": {"url": "http://x", "method": "FETCH"}}
    for level in range(3):
        step = {"name": f"level{level}", "forEach": {"items": "[1]", "step": step}}
    runs.apply(workflow("deep", [step]))

    def invalid() -> dict[str, Any] | None:
        obj = runs.api.get_namespaced_custom_object(
            "baton.dev", "v1alpha1", runs.namespace, "workflows", "deep"
        )
        return condition(obj, "Invalid")

    found = wait_until("Workflow deep has an Invalid condition", invalid)
    assert "forEach.step.forEach.step.forEach.step.http.method" in found["message"], found


def test_run_of_a_missing_workflow_is_invalid_until_the_workflow_is_applied(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(run("early", "later"))
    found = wait_until(
        "run early has an Invalid condition", lambda: condition(runs.get("early"), "Invalid")
    )
    assert found["reason"] == "WorkflowNotFound", found
    assert "later" in found["message"]
    assert recorder.calls == []
    runs.apply(workflow("later", [{"name": "call", "http": http(f"{recorder.url}/call")}]))
    status = runs.wait("early")
    assert status["phase"] == "Succeeded", status
    assert condition(runs.get("early"), "Invalid") is None
    assert len(recorder.calls_to("/call")) == 1


def test_deleting_a_run_garbage_collects_its_jobs_child_runs_and_configmaps(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/big", Reply(body={"rows": ["x" * 100] * 100}))  # offloaded: over 4 KiB
    runs.apply(
        [
            workflow("child", [{"name": "wait", "waitForSignal": {"name": "never"}}]),
            workflow(
                "owner",
                [
                    {"name": "big", "http": http(f"{recorder.url}/big", method="GET")},
                    {
                        "name": "both",
                        "parallel": {
                            "branches": [
                                {
                                    "name": "job",
                                    "steps": [
                                        {
                                            "name": "build",
                                            "job": {
                                                "image": "registry.example/builder:1",
                                                "podAnnotations": kwok(duration="10m"),
                                            },
                                        }
                                    ],
                                },
                                {
                                    "name": "child",
                                    "steps": [
                                        {"name": "kid", "workflow": {"workflowRef": "child"}}
                                    ],
                                },
                            ]
                        },
                    },
                ],
            ),
            run("doomed", "owner"),
        ]
    )
    job, kid = runs.owned_name("doomed", "build"), runs.owned_name("doomed", "kid")
    wait_created(runs.cluster, runs.namespace, "job", job)
    wait_created(runs.cluster, runs.namespace, "workflowrun", kid)
    runs.wait(kid, step="wait", step_phase="Waiting")
    child_uid = runs.get(kid)["metadata"]["uid"]
    parent_uid = runs.get("doomed")["metadata"]["uid"]

    def owned() -> list[str]:
        names: list[str] = []
        for uid in (parent_uid, child_uid):
            names += runs.cluster.kubectl(
                "get", "jobs,configmaps,workflowruns", "-n", runs.namespace,
                "-l", f"baton.dev/run-uid={uid}", "-o", "name",
            ).stdout.split()  # fmt: skip
        names += runs.cluster.kubectl(
            "get", "workflowruns", "-n", runs.namespace,
            "-l", f"baton.dev/parent-uid={parent_uid}", "-o", "name",
        ).stdout.split()  # fmt: skip
        return sorted(names)

    # The offloaded output is written with the status, which may lag by the status interval.
    wait_until(
        "the big output offloaded",
        lambda: any(n.startswith("configmap/doomed-out-") for n in owned()),
        timeout=90,
    )
    before = owned()
    assert f"job.batch/{job}" in before
    assert f"workflowrun.baton.dev/{kid}" in before
    assert "configmap/doomed-history-0" in before
    assert f"configmap/{kid}-history-0" in before
    assert any(n.startswith("configmap/doomed-out-") for n in before), before
    runs.cluster.kubectl("delete", "workflowrun", "doomed", "-n", runs.namespace, "--wait=true")
    wait_until(f"garbage collection of {before}", lambda: owned() == [], timeout=60)


def test_history_configmaps_hold_every_event_and_baton_history_prints_them(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/second", Reply(500), Reply(body={"ok": 2}))
    runs.apply(
        [
            workflow(
                "logged",
                [
                    {"name": "first", "http": http(f"{recorder.url}/first")},
                    {
                        "name": "second",
                        "http": http(f"{recorder.url}/second"),
                        "retry": {"maxAttempts": 2, "initialInterval": "200ms"},
                    },
                ],
            ),
            run("logged-1", "logged"),
        ]
    )
    status = runs.wait("logged-1")
    assert status["phase"] == "Succeeded", status
    data = json.loads(
        jsonpath(runs.cluster, runs.namespace, "configmap", "logged-1-history-0", "{.data}")
    )
    # The first chunk carries the definition snapshot beside the batches.
    assert [step["name"] for step in json.loads(data.pop("definition"))["steps"]] == [
        "first",
        "second",
    ]
    lines = [line for _, text in sorted(data.items()) for line in text.splitlines() if line]
    stored = [json.loads(line) for line in lines]
    # Each batch ends with its seal (docs/architecture.md, "History integrity").
    assert [e for e in stored if "mac" in e] == [e for e in stored if set(e) == {"mac"}]
    assert len([e for e in stored if "mac" in e]) == status["history"]["batches"]
    stored = [e for e in stored if "mac" not in e]
    assert len(stored) == status["history"]["events"]
    types = [e["type"] for e in stored]
    assert types[0] == "RunStarted"
    assert types.count("ActivityCompleted") == 2
    assert types.count("ActivityFailed") == 1
    assert history(runs.cluster, runs.namespace, "logged-1") == stored
    printed = baton(runs.cluster, "history", "logged-1", "-n", runs.namespace).stdout
    header, *lines = printed.strip().splitlines()
    assert f"{len(stored)} events" in header, printed
    assert len(lines) == len(stored), printed
    for line, event in zip(lines, stored, strict=True):
        assert line.split()[1] == event["type"], printed
    assert "HttpError: 500" in printed


def configmap_writes(operator: OperatorProcess) -> float:
    samples = operator.metrics()
    return sum(
        value(samples, "baton_api_writes_total", verb=verb, resource="configmaps")
        for verb in ("post", "patch", "put")
    )


def test_a_run_starts_with_one_configmap_write_holding_its_definition_and_first_batch(
    runs: Runs, operator: OperatorProcess
) -> None:
    steps = [
        {"name": "gate", "waitForSignal": {"name": "go"}},
        {"name": "later", "sleep": {"duration": "1s"}},
    ]
    runs.apply([workflow("gated", steps)])
    before = configmap_writes(operator)
    runs.apply([run("gated-1", "gated")])
    status = runs.wait("gated-1", step="gate", step_phase="Waiting")
    # The start batch (the run started, the gate waiting) and the snapshot: one create.
    assert status["history"]["batches"] == 1
    assert configmap_writes(operator) - before == 1
    assert status["definition"]["configMap"] == "gated-1-history-0"
    chunk = json.loads(
        jsonpath(runs.cluster, runs.namespace, "configmap", "gated-1-history-0", "{.data}")
    )
    assert json.loads(chunk["definition"])["steps"][0]["name"] == "gate"
    names = runs.cluster.kubectl("get", "configmaps", "-n", runs.namespace, "-o", "name").stdout
    assert "configmap/gated-1-definition" not in names.split()
    # `baton describe` draws the steps not started yet from the snapshot.
    assert "later" in baton(runs.cluster, "describe", "gated-1", "-n", runs.namespace).stdout
    send_signal(runs.cluster, runs.namespace, "gated-1", "go")
    assert runs.wait("gated-1")["phase"] == "Succeeded"


def test_a_run_started_with_its_definition_in_a_configmap_of_its_own_still_resumes(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    """What earlier versions wrote: `<run>-definition` and `status.definition` naming it."""
    runs.apply([versioned(recorder, 1), run("old-1", "versioned")])
    runs.wait("old-1", step="gate", step_phase="Waiting")
    operator.stop()
    core = client.CoreV1Api(runs.cluster.api_client)
    chunk = core.read_namespaced_config_map("old-1-history-0", runs.namespace)
    seal = {k: v for k, v in chunk.metadata.annotations.items() if k in SEAL}
    legacy = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name="old-1-definition",
            labels={**chunk.metadata.labels, "baton.dev/part": "definition"},
            annotations=seal,
            owner_references=chunk.metadata.owner_references,
        ),
        data={"json": chunk.data["definition"]},
        immutable=True,
    )
    core.create_namespaced_config_map(runs.namespace, legacy)
    core.patch_namespaced_config_map(
        "old-1-history-0",
        runs.namespace,
        {"data": {"definition": None}, "metadata": {"annotations": dict.fromkeys(seal)}},
    )
    client.CustomObjectsApi(runs.cluster.api_client).patch_namespaced_custom_object_status(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns", "old-1",
        {"status": {"definition": {"configMap": "old-1-definition"}}},
    )  # fmt: skip
    # `baton describe` draws the step not started yet from the snapshot it names.
    assert "call" in baton(runs.cluster, "describe", "old-1", "-n", runs.namespace).stdout
    # Meanwhile the Workflow moved on: the run keeps the definition it started with.
    runs.apply([versioned(recorder, 2)])
    operator.start()
    send_signal(runs.cluster, runs.namespace, "old-1", "go")
    status = runs.wait("old-1")
    assert status["phase"] == "Succeeded", status
    assert status["definition"]["configMap"] == "old-1-definition"
    assert len(recorder.calls_to("/v1")) == 1
    assert recorder.calls_to("/v2") == []


def run_events(runs: Runs, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Kubernetes Events on WorkflowRun `name`, sorted."""
    items = json.loads(
        runs.cluster.kubectl(
            "get", "events", "-n", runs.namespace,
            "--field-selector", f"involvedObject.kind=WorkflowRun,involvedObject.name={name}",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    return sorted((e["type"], e["reason"], e["message"]) for e in items)


def test_kubernetes_events_mark_run_phases_and_failed_steps_but_not_succeeded_steps(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/second", Reply(500))
    runs.apply(
        [
            workflow(
                "noisy",
                [
                    {"name": "first", "http": http(f"{recorder.url}/first")},
                    {
                        "name": "second",
                        "http": http(f"{recorder.url}/second"),
                        "retry": {"maxAttempts": 2, "initialInterval": "200ms"},
                    },
                ],
            ),
            run("noisy-1", "noisy"),
        ]
    )
    assert runs.wait("noisy-1")["phase"] == "Failed"
    wanted = [
        ("Normal", "RunRunning"),
        ("Warning", "RunFailed"),
        ("Warning", "StepFailed"),
        ("Warning", "StepRetrying"),
    ]
    wait_until(
        "the run's Events",
        lambda: ("Warning", "RunFailed") in [e[:2] for e in run_events(runs, "noisy-1")],
    )
    events = run_events(runs, "noisy-1")
    assert [e[:2] for e in events] == wanted, events
    messages = {(kind, reason): message for kind, reason, message in events}
    assert messages["Warning", "RunFailed"].startswith("the run ended Failed"), events
    assert messages["Warning", "StepFailed"] == "step second failed (HttpError)", events
    assert messages["Warning", "StepRetrying"].startswith("step second attempt 1 failed"), events


def test_step_events_flag_adds_an_event_for_each_succeeded_step(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    runs: Runs,
    recorder: Recorder,
) -> None:
    runs.apply(
        [
            workflow(
                "noisy",
                [
                    {"name": "first", "http": http(f"{recorder.url}/first")},
                    {"name": "second", "http": http(f"{recorder.url}/second")},
                ],
            ),
            run("noisy-1", "noisy"),
        ]
    )
    with started_operator(runs.cluster, runs.namespace, tmp_path, request, "--step-events"):
        assert runs.wait("noisy-1")["phase"] == "Succeeded"
        wanted = [
            ("Normal", "RunRunning", "run is Running"),
            ("Normal", "RunSucceeded", "run is Succeeded"),
            ("Normal", "StepSucceeded", "step first succeeded"),
            ("Normal", "StepSucceeded", "step second succeeded"),
        ]
        wait_until("an Event for each step", lambda: len(run_events(runs, "noisy-1")) >= 4)
        assert run_events(runs, "noisy-1") == wanted
    described = runs.cluster.kubectl("describe", "workflowrun", "noisy-1", "-n", runs.namespace)
    assert "StepSucceeded" in described.stdout


def test_run_recreated_under_a_deleted_runs_name_never_adopts_that_runs_configmaps(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply([versioned(recorder, 1), run("reused", "versioned")])
    runs.wait("reused", step="gate", step_phase="Waiting")
    old_uid = runs.get("reused")["metadata"]["uid"]
    # Orphaned, the old run's ConfigMaps stay: what a lagging garbage collector leaves for a
    # while after a plain delete, made to last.
    runs.cluster.kubectl(
        "delete", "workflowrun", "reused", "-n", runs.namespace, "--cascade=orphan"
    )
    runs.apply([versioned(recorder, 2), run("reused", "versioned")])
    new_uid = runs.get("reused")["metadata"]["uid"]

    def warned() -> bool:
        return "reused-history-0" in runs.cluster.kubectl(
            "get", "events", "-n", runs.namespace,
            "--field-selector", f"involvedObject.uid={new_uid},type=Warning",
            "-o", "jsonpath={.items[*].message}",
        ).stdout  # fmt: skip

    wait_until("a Warning that the old run's ConfigMap holds the name", warned)
    runs.cluster.kubectl(
        "delete", "configmaps", "-n", runs.namespace, "-l", f"baton.dev/run-uid={old_uid}"
    )
    runs.wait("reused", step="gate", step_phase="Waiting", timeout=40)
    operator.kill()  # the restarted loop reads the definition and history back
    operator.start()
    send_signal(runs.cluster, runs.namespace, "reused", "go")
    status = runs.wait("reused")
    assert status["phase"] == "Succeeded", status
    assert recorder.calls_to("/v1") == []
    assert len(recorder.calls_to("/v2")) == 1
    owner = jsonpath(
        runs.cluster, runs.namespace, "configmap", "reused-history-0",
        "{.metadata.ownerReferences[0].uid}",
    )  # fmt: skip
    assert owner == new_uid
    events = history(runs.cluster, runs.namespace, "reused")
    assert events[0]["type"] == "RunStarted"
    assert events[0]["uid"] == new_uid


def test_run_whose_input_fails_the_input_schema_gets_an_invalid_condition(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    schema = {"type": "object", "required": ["propertyId"]}
    runs.apply(
        [
            workflow(
                "strict",
                [{"name": "call", "http": http(f"{recorder.url}/call")}],
                inputSchema=schema,
            ),
            run("strict-1", "strict", {"property": 42}),
        ]
    )
    found = wait_until(
        "run strict-1 has an Invalid condition", lambda: condition(runs.get("strict-1"), "Invalid")
    )
    assert found["reason"] == "InvalidInput", found
    assert "propertyId" in found["message"], found
    assert recorder.calls == []


def test_a_finished_run_is_deleted_after_its_ttl_with_everything_it_owns(
    runs: Runs, operator: OperatorProcess
) -> None:
    cluster, namespace = runs.cluster, runs.namespace
    note = [{"name": "note", "set": {"done": True}}]
    runs.apply(
        [
            workflow("short-lived", note, ttlAfterFinished="1h"),
            run("kept", "short-lived"),
            run("expiring", "short-lived", ttlAfterFinished="2s"),  # the run's own wins
        ]
    )
    kept = runs.wait("kept")
    assert kept["phase"] == "Succeeded"
    assert kept["expiresAt"] > kept["finishedAt"]
    uid = runs.get("expiring")["metadata"]["uid"]
    history = f"baton.dev/run-uid={uid},baton.dev/part=history"

    def gone() -> bool:
        listed = cluster.kubectl("get", "workflowrun", "expiring", "-n", namespace, check=False)
        return listed.returncode != 0

    wait_until("the expired run deleted", gone, 60)
    # The garbage collector follows: the run's history goes with it.
    wait_until(
        "its history deleted",
        lambda: (
            not cluster.kubectl(
                "get", "configmaps", "-n", namespace, "-l", history, "-o", "name"
            ).stdout.strip()
        ),
        60,
    )
    assert runs.get("kept")["status"]["phase"] == "Succeeded"
