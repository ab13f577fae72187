"""Each kind of step, run by the operator on the real control plane: http, job, worker, sleep,
parallel, forEach, set, fail, and outputs too large for the status. (Child runs:
test_run_children.py; waitForSignal: test_run_signals.py.)"""

from __future__ import annotations

import json

import pytest
from conftest import Runs
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import (
    PodRule,
    history,
    http,
    jsonpath,
    kwok,
    kwok_pods,
    run,
    wait_created,
    worker_pool,
    workflow,
)


def test_worker_step_posts_its_task_to_the_pool_endpoint_and_returns_the_output(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/pool/activities/charge", Reply(body={"output": {"charge": "ch-7"}}))
    runs.apply(
        [
            worker_pool("payments", f"{recorder.url}/pool"),
            workflow(
                "pay",
                [
                    {
                        "name": "charge",
                        "worker": {
                            "pool": "payments",
                            "activity": "charge",
                            "input": {"amount": "${{ input.amount }}"},
                        },
                    }
                ],
                output="${{ steps.charge.output.charge }}",
            ),
            run("pay-1", "pay", {"amount": 1250}),
        ]
    )
    status = runs.wait("pay-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == "ch-7"
    uid = runs.get("pay-1")["metadata"]["uid"]
    [call] = recorder.calls_to("/pool/activities/charge")
    assert call.method == "POST"
    assert call.key == f"{uid}/charge/1"
    assert call.body == {
        "input": {"amount": 1250},
        "idempotencyKey": f"{uid}/charge/1",
        "attempt": 1,
        "run": {"name": "pay-1", "namespace": runs.namespace, "uid": uid},
    }


def test_job_step_output_is_the_termination_message_of_its_pod(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    job = {
        "image": "registry.example/builder:1",
        "podAnnotations": kwok(message={"digest": "sha256:abc"}),
    }
    runs.apply(
        [
            workflow(
                "build",
                [
                    {"name": "build", "job": job},
                    {
                        "name": "publish",
                        "http": http(f"{recorder.url}/publish", body="${{ steps.build.output }}"),
                    },
                ],
            ),
            run("build-1", "build"),
        ]
    )
    status = runs.wait("build-1")
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["build"]["output"] == {"digest": "sha256:abc"}
    assert recorder.calls_to("/publish")[0].body == {"digest": "sha256:abc"}
    owner = json.loads(
        jsonpath(
            runs.cluster,
            runs.namespace,
            "job",
            runs.owned_name("build-1", "build"),
            "{.metadata.ownerReferences}",
        )
    )
    assert [(o["kind"], o["name"]) for o in owner] == [("WorkflowRun", "build-1")]


def test_job_step_that_fails_is_retried_as_a_second_job_that_succeeds(
    runs: Runs, operator: OperatorProcess
) -> None:
    rules = (
        PodRule("build", kwok(exit_code=3), attempt=1),
        PodRule("build", kwok(message={"ok": 2}), attempt=2),
    )
    with kwok_pods(runs.cluster, runs.namespace, *rules):
        runs.apply(
            [
                workflow(
                    "build",
                    [
                        {
                            "name": "build",
                            "job": {"image": "registry.example/builder:1"},
                            "retry": {"maxAttempts": 3, "initialInterval": "200ms"},
                        }
                    ],
                    output="${{ steps.build.output }}",
                ),
                run("flaky", "build"),
            ]
        )
        status = runs.wait("flaky")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"ok": 2}
    assert status["steps"]["build"]["attempts"] == 2
    failed = jsonpath(
        runs.cluster,
        runs.namespace,
        "job",
        runs.owned_name("flaky", "build", 1),
        '{.status.conditions[?(@.type=="Failed")].status}',
    )
    assert failed == "True"
    complete = jsonpath(
        runs.cluster,
        runs.namespace,
        "job",
        runs.owned_name("flaky", "build", 2),
        '{.status.conditions[?(@.type=="Complete")].status}',
    )
    assert complete == "True"
    [failure] = [
        e for e in history(runs.cluster, runs.namespace, "flaky") if e["type"] == "ActivityFailed"
    ]
    assert failure["error"]["type"] == "JobFailed"
    assert failure["error"]["details"]["exitCode"] == 3


def test_job_deleted_while_running_is_retried_as_job_lost_and_the_run_succeeds(
    runs: Runs, operator: OperatorProcess
) -> None:
    rules = (
        PodRule("build", kwok(duration="10m"), attempt=1),
        PodRule("build", kwok(message={"ok": True}), attempt=2),
    )
    with kwok_pods(runs.cluster, runs.namespace, *rules):
        runs.apply(
            [
                workflow(
                    "build",
                    [
                        {
                            "name": "build",
                            "job": {"image": "registry.example/builder:1"},
                            "retry": {"maxAttempts": 2, "initialInterval": "200ms"},
                        }
                    ],
                ),
                run("lost", "build"),
            ]
        )
        runs.wait("lost", step="build", step_phase="Running")
        name = runs.owned_name("lost", "build")
        wait_created(runs.cluster, runs.namespace, "job", name)
        runs.cluster.kubectl("delete", "job", name, "-n", runs.namespace)
        status = runs.wait("lost")
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["build"]["attempts"] == 2
    assert status["steps"]["build"]["output"] == {"ok": True}
    [failure] = [
        e for e in history(runs.cluster, runs.namespace, "lost") if e["type"] == "ActivityFailed"
    ]
    assert failure["error"]["type"] == "JobLost"


def test_sleep_step_holds_the_next_step_for_its_duration(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "nap",
                [
                    {"name": "before", "http": http(f"{recorder.url}/before")},
                    {"name": "nap", "sleep": {"duration": "2s"}},
                    {"name": "after", "http": http(f"{recorder.url}/after")},
                ],
            ),
            run("nap-1", "nap"),
        ]
    )
    status = runs.wait("nap-1")
    assert status["phase"] == "Succeeded", status
    [before] = recorder.calls_to("/before")
    [after] = recorder.calls_to("/after")
    assert after.at - before.at >= 2.0


def test_parallel_branches_run_at_the_same_time_and_the_output_maps_each_branch(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/branch/a", Reply(body={"from": "a"}, delay=3))
    recorder.script("/branch/b", Reply(body={"from": "b"}, delay=3))
    runs.apply(
        [
            workflow(
                "fan",
                [
                    {
                        "name": "both",
                        "parallel": {
                            "branches": [
                                {
                                    "name": "a",
                                    "steps": [
                                        {"name": "callA", "http": http(f"{recorder.url}/branch/a")}
                                    ],
                                },
                                {
                                    "name": "b",
                                    "steps": [
                                        {"name": "callB", "http": http(f"{recorder.url}/branch/b")}
                                    ],
                                },
                            ]
                        },
                    }
                ],
                output="${{ steps.both.output }}",
            ),
            run("fan-1", "fan"),
        ]
    )
    status = runs.wait("fan-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"a": {"from": "a"}, "b": {"from": "b"}}
    assert recorder.max_concurrent("/branch/") == 2


def test_for_each_runs_its_step_per_item_and_collects_the_outputs_in_item_order(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    for i, delay in enumerate([0.6, 0.0, 0.3]):
        recorder.script(f"/items/{i}", Reply(body={"n": i}, delay=delay))
    runs.apply(
        [
            workflow(
                "each",
                [
                    {
                        "name": "all",
                        "forEach": {
                            "items": "input.names",
                            "concurrency": 3,
                            "step": {
                                "name": "one",
                                "http": http(
                                    f"{recorder.url}/items/${{{{ index }}}}",
                                    body={"name": "${{ item }}"},
                                ),
                            },
                        },
                    }
                ],
                output="${{ steps.all.output }}",
            ),
            run("each-1", "each", {"names": ["ann", "bob", "cy"]}),
        ]
    )
    status = runs.wait("each-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert sorted(c.body["name"] for c in recorder.calls) == ["ann", "bob", "cy"]
    assert status["steps"]["all"]["itemCounts"] == {
        "total": 3,
        "succeeded": 3,
        "failed": 0,
        "running": 0,
    }
    assert status["steps"]["all[1].one"]["phase"] == "Succeeded"


def test_for_each_with_concurrency_2_never_has_more_than_2_items_in_flight(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    # Replies slow enough that the two items started together overlap even on a loaded machine.
    for i in range(6):
        recorder.script(f"/slow/{i}", Reply(body={"n": i}, delay=1.5))
    runs.apply(
        [
            workflow(
                "limited",
                [
                    {
                        "name": "all",
                        "forEach": {
                            "items": "input.items",
                            "concurrency": 2,
                            "step": {
                                "name": "one",
                                "http": http(f"{recorder.url}/slow/${{{{ item }}}}"),
                            },
                        },
                    }
                ],
            ),
            run("limited-1", "limited", {"items": list(range(6))}),
        ]
    )
    status = runs.wait("limited-1")
    assert status["phase"] == "Succeeded", status
    assert len(recorder.calls) == 6
    assert recorder.max_concurrent("/slow/") == 2


def test_set_step_assigns_vars_that_later_steps_read(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "greet",
                [
                    {
                        "name": "remember",
                        "set": {"greeting": "hello ${{ input.name }}", "count": 2},
                    },
                    {
                        "name": "send",
                        "http": http(
                            f"{recorder.url}/send",
                            body={"text": "${{ vars.greeting }}", "count": "${{ vars.count }}"},
                        ),
                    },
                ],
            ),
            run("greet-1", "greet", {"name": "ada"}),
        ]
    )
    status = runs.wait("greet-1")
    assert status["phase"] == "Succeeded", status
    assert status["vars"] == {"greeting": "hello ada", "count": 2}
    assert recorder.calls_to("/send")[0].body == {"text": "hello ada", "count": 2}


def test_fail_step_fails_the_run_with_its_error_type_and_rendered_message(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "refuse",
                [
                    {
                        "name": "check",
                        "fail": {"error": "TooExpensive", "message": "amount ${{ input.amount }}"},
                    },
                    {"name": "never", "http": http(f"{recorder.url}/never")},
                ],
            ),
            run("refuse-1", "refuse", {"amount": 9000}),
        ]
    )
    status = runs.wait("refuse-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "TooExpensive"
    assert status["error"]["message"] == "amount 9000"
    assert status["steps"]["check"]["phase"] == "Failed"
    assert recorder.calls == []


def test_output_over_4_kib_is_offloaded_to_a_configmap_and_the_next_step_still_reads_it(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    big = {"rows": [f"row-{i:05d}" for i in range(1000)]}  # about 12 KB of JSON
    recorder.script("/big", Reply(body=big))
    runs.apply(
        [
            workflow(
                "large",
                [
                    {"name": "fetch", "http": http(f"{recorder.url}/big", method="GET")},
                    {
                        "name": "count",
                        "http": http(
                            f"{recorder.url}/count",
                            body={
                                "rows": "${{ size(steps.fetch.output.rows) }}",
                                "last": "${{ steps.fetch.output.rows[999] }}",
                            },
                        ),
                    },
                ],
            ),
            run("large-1", "large"),
        ]
    )
    status = runs.wait("large-1")
    assert status["phase"] == "Succeeded", status
    ref = status["steps"]["fetch"]["output"]
    assert set(ref) == {"$ref"}, ref
    data = json.loads(jsonpath(runs.cluster, runs.namespace, "configmap", ref["$ref"], "{.data}"))
    assert big in [json.loads(v) for v in data.values()]
    owner = jsonpath(
        runs.cluster,
        runs.namespace,
        "configmap",
        ref["$ref"],
        "{.metadata.ownerReferences[0].name}",
    )
    assert owner == "large-1"
    assert recorder.calls_to("/count")[0].body == {"rows": 1000, "last": "row-00999"}


@pytest.mark.timeout(600)  # waits up to 180 s for the run
def test_a_status_over_its_budget_offloads_every_output_and_stays_under_it(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    # 200 outputs of 3 KB each: each under the 4 KiB threshold, 600 KB together.
    recorder.script("/appraise", Reply(body={"report": "r" * 3000}))
    step = {
        "name": "each",
        "forEach": {
            "items": "input.parcels",
            "concurrency": 50,
            "step": {"name": "appraise", "http": http(f"{recorder.url}/appraise")},
        },
    }
    runs.apply(
        [
            workflow("appraise-many", [step]),
            run("many-1", "appraise-many", {"parcels": list(range(200))}),
        ]
    )
    status = runs.wait("many-1", timeout=180)
    assert status["phase"] == "Succeeded", status
    assert len(json.dumps(status, separators=(",", ":"))) < 512 * 1024
    assert set(status["steps"]["each[0].appraise"]["output"]) == {"$ref"}
    assert set(status["steps"]["each"]["output"]) == {"$ref"}
