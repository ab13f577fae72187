"""Failure control and races on the real control plane: a failed branch stops its siblings'
Jobs and HTTP calls at once and the saga starts without waiting for them; a race deletes its
losing branch's Job."""

from __future__ import annotations

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import REPLY_NEVER, Recorder, Reply
from runkit import http, kwok, run, send_signal, wait_created, workflow

LONG_JOB = {"image": "registry.example/db-provisioner:2", "podAnnotations": kwok(duration="10m")}
"""A Job whose pod runs ten minutes: a run that ends within a test's wait did not wait for it."""


def test_a_failed_branch_deletes_the_siblings_job_aborts_its_call_and_compensates_at_once(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/slow", Reply(body={"late": True}, delay=REPLY_NEVER))
    recorder.script("/dns", Reply(409, body={"error": "exists"}))
    runs.apply(
        [
            workflow(
                "provision",
                [
                    {
                        "name": "quota",
                        "http": http(f"{recorder.url}/quota"),
                        "compensate": {"http": http(f"{recorder.url}/quota/q-1", method="DELETE")},
                    },
                    {
                        "name": "provision",
                        "parallel": {
                            "branches": [
                                {"name": "db", "steps": [{"name": "database", "job": LONG_JOB}]},
                                {
                                    "name": "slow",
                                    "steps": [
                                        {"name": "audit", "http": http(f"{recorder.url}/slow")}
                                    ],
                                },
                                {
                                    "name": "dns",
                                    "steps": [
                                        {"name": "gate", "waitForSignal": {"name": "go"}},
                                        {
                                            "name": "record",
                                            "http": http(f"{recorder.url}/dns"),
                                            "retry": {"maxAttempts": 1},
                                        },
                                    ],
                                },
                            ]
                        },
                    },
                ],
            ),
            run("provision-1", "provision"),
        ]
    )
    # The DNS call waits for a signal sent once the Job exists and the slow call is in flight,
    # so its failure lands while both are running.
    job = runs.owned_name("provision-1", "database")
    wait_created(runs.cluster, runs.namespace, "job", job)
    recorder.wait_for_calls("/slow", 1)
    send_signal(runs.cluster, runs.namespace, "provision-1", "go")
    status = runs.wait("provision-1", timeout=60)
    assert status["phase"] == "Compensated", status
    assert status["error"]["step"] == "record"
    assert status["steps"]["database"]["phase"] == "Cancelled"
    assert status["steps"]["audit"]["phase"] == "Cancelled"
    recorder.wait_for_abort("/slow")
    assert len(recorder.calls_to("/quota/q-1")) == 1
    runs.cluster.kubectl(
        "wait", "-n", runs.namespace, "--for=delete", f"job/{job}", "--timeout=30s"
    )


def test_a_race_deletes_the_job_of_its_losing_branch(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/quote", Reply(body={"price": 99}))
    runs.apply(
        [
            workflow(
                "quote",
                [
                    {
                        "name": "race",
                        "parallel": {
                            "mode": "race",
                            "branches": [
                                {"name": "batch", "steps": [{"name": "reprice", "job": LONG_JOB}]},
                                {
                                    "name": "vendor",
                                    "steps": [
                                        {"name": "gate", "waitForSignal": {"name": "go"}},
                                        {"name": "ask", "http": http(f"{recorder.url}/quote")},
                                    ],
                                },
                            ],
                        },
                    }
                ],
                output="${{ steps.race.output }}",
            ),
            run("quote-1", "quote"),
        ]
    )
    job = runs.owned_name("quote-1", "reprice")
    wait_created(runs.cluster, runs.namespace, "job", job)
    runs.wait("quote-1", step="reprice", step_phase="Running")
    send_signal(runs.cluster, runs.namespace, "quote-1", "go")
    status = runs.wait("quote-1", timeout=60)
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"winner": "vendor", "output": {"price": 99}}
    assert status["steps"]["reprice"]["phase"] == "Cancelled"
    runs.cluster.kubectl(
        "wait", "-n", runs.namespace, "--for=delete", f"job/{job}", "--timeout=30s"
    )
