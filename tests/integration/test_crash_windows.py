"""Crash tests of the windows the saga does not reach: the operator dies at a failpoint inside
the window (or is killed -9 while a user acts), is started again, and the run still ends as it
should, each side effect applied once (counted by the recorder, by Jobs and by child runs), its
history replaying to its status.

Each test steers its own operator through a few lives (crashkit.Lives): a life armed with
`name:n` dies at the n-th time the process passes that failpoint, so a restart armed with `:1`
dies in the first batch it commits after resuming — the batch of whatever the user changed
while the operator was down. The windows:

- history chunk rollover: dying between closing a full chunk and creating the next, then after
  the batch that creates it is written but before the status shows it;
- output offload: dying after a large output's ConfigMap is written but before a status refers
  to it, then before the next step is performed: the resumed run reads the output back;
- child creation: dying after a child run is created but before the parent saw it, then after
  the child ended but before the parent heard of it;
- forEach and parallel: dying with a fan-out half started (some children, Jobs and calls made,
  others not);
- cancel and terminate: dying with the cancellation in the history only, or with the run ended
  Cancelled: the child run must be cancelled and the Job deleted all the same;
- retries with backoff: dying during a backoff, then with the retry committed and handed over;
- redrive: dying with the redrive in the history but not in the status;
- suspend: dying while suspended (a signal ends the waiting step, the next must not start), and
  with the resume committed but its step not started;
- continue-as-new: dying with the continue committed but the successor not created, and after
  creating it, before the run heard of it: one successor, never two.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from clusterkit import Runs
from crashkit import LivesFactory, check_replay
from kubernetes import client
from recorder import Recorder, Reply
from runkit import http, kwok, run, send_signal, wait_until, workflow

from baton.api.labels import ACTIVITY_KEY, ATTEMPT, CONTINUED_FROM, PARENT_UID, PART, RUN_UID
from baton.engine.commands import StartActivity, StartChildRun
from baton.executors.child import child_manifest
from baton.executors.job import build_job
from baton.settings import OperatorSettings
from baton.store.history import CLOSED, HISTORY
from baton.store.ref import RunRef

pytestmark = pytest.mark.timeout(300)


def uid_of(runs: Runs, name: str) -> str:
    uid: str = runs.get(name)["metadata"]["uid"]
    return uid


def keys(recorder: Recorder, path: str) -> list[str | None]:
    """The distinct idempotency keys `path` was called with, in order of their first call."""
    return list(dict.fromkeys(call.key for call in recorder.calls_to(path)))


def patch_spec(runs: Runs, name: str, spec: dict[str, Any]) -> None:
    """A merge patch of the run's spec, as `baton cancel|suspend|resume` or kubectl would."""
    runs.api.patch_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns", name, {"spec": spec}
    )


def children(runs: Runs, parent: str) -> list[dict[str, Any]]:
    """The child runs of run `parent`, by name."""
    listing = runs.api.list_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns",
        label_selector=f"{PARENT_UID}={uid_of(runs, parent)}",
    )  # fmt: skip
    items: list[dict[str, Any]] = listing["items"]
    return sorted(items, key=lambda item: str(item["metadata"]["name"]))


def jobs_of(runs: Runs, name: str) -> list[tuple[str, str]]:
    """(activity key, attempt) of every Job of run `name`."""
    batch = client.BatchV1Api(runs.cluster.api_client)
    listing = batch.list_namespaced_job(
        runs.namespace, label_selector=f"{RUN_UID}={uid_of(runs, name)}"
    )
    return sorted(
        (j.metadata.annotations[ACTIVITY_KEY], j.metadata.annotations[ATTEMPT])
        for j in listing.items
    )


def leaf(recorder: Recorder) -> dict[str, Any]:
    """A child workflow: one call that packs `input.item`."""
    pack = http(f"{recorder.url}/pack", body={"item": "${{ input.item }}"})
    return workflow(
        "leaf", [{"name": "pack", "http": pack}], output={"packed": "${{ input.item }}"}
    )


def kid(item: Any, name: str = "kid") -> dict[str, Any]:
    return {"name": name, "workflow": {"workflowRef": "leaf", "input": {"item": item}}}


# -- history chunk rollover ---------------------------------------------------------------------


def test_history_rollover_survives_a_crash_between_closing_a_chunk_and_opening_the_next(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    lives = make_lives("--history-chunk-bytes", "600")  # two or three batches a chunk
    steps = [{"name": f"s{i}", "http": http(f"{recorder.url}/s{i}")} for i in range(8)]
    spec = workflow("long", steps)
    runs.apply([spec, run("long-1", "long")])
    # Dies with chunk n closed and n+1 not created; the next life redoes that batch (its call
    # is re-issued, the close repeated) and dies once it created chunk n+1, before the status
    # says so; the last one carries on through further chunks.
    lives.die_at("history-chunk-closed")
    lives.die_at("after-history-append")
    lives.start()
    status = runs.wait("long-1", timeout=90)
    assert status["phase"] == "Succeeded", status
    uid = uid_of(runs, "long-1")
    for i in range(8):
        assert keys(recorder, f"/s{i}") == [f"{uid}/s{i}/1"], i
        assert len(recorder.effects_on(f"/s{i}")) == 1
    chunks = check_replay(runs, spec, "long-1")
    assert chunks >= 3, chunks
    core = client.CoreV1Api(runs.cluster.api_client)
    listing = core.list_namespaced_config_map(
        runs.namespace, label_selector=f"{RUN_UID}={uid},{PART}={HISTORY}"
    )
    closed = sorted((cm.metadata.annotations or {}).get(CLOSED) == "true" for cm in listing.items)
    assert closed == [False] + [True] * (chunks - 1), "every chunk but the last is closed"


# -- output offload ---------------------------------------------------------------------------


def test_offloaded_output_survives_crashes_around_its_configmap_and_is_read_back(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    big = {"rows": ["r" * 100] * 60}  # about 6 KB: over the 4 KiB offload threshold
    recorder.script("/big", Reply(body=big))
    spec = workflow(
        "bulky",
        [
            {"name": "big", "http": http(f"{recorder.url}/big")},
            {"name": "use", "http": http(f"{recorder.url}/use", body="${{ steps.big.output }}")},
        ],
        output="${{ steps.big.output }}",
    )
    runs.apply([spec, run("bulky-1", "bulky")])
    lives = make_lives()
    # The batch with `big`'s output is in the history; its ConfigMap is written, no status
    # refers to it yet.
    lives.die_at("after-output-offload")
    assert "$ref" not in str(runs.status("bulky-1").get("steps", {}).get("big"))
    # The next life folds that batch again, writes the status (the ConfigMap is there already)
    # and dies once it handed `use` to its executor.
    lives.die_at("after-command:1")
    assert set(runs.status("bulky-1")["steps"]["big"]["output"]) == {"$ref"}
    # Resumes from the status: the output is read back from its ConfigMap, and the run's
    # output, computed from it at the end, is that output (check_replay compares them).
    lives.start()
    status = runs.wait("bulky-1")
    assert status["phase"] == "Succeeded", status
    uid = uid_of(runs, "bulky-1")
    assert keys(recorder, "/big") == [f"{uid}/big/1"]
    assert [call.body for call in recorder.effects_on("/use")] == [big]
    assert set(status["output"]) == {"$ref"}  # the same content: the same ConfigMap
    core = client.CoreV1Api(runs.cluster.api_client)
    offloaded = core.list_namespaced_config_map(
        runs.namespace, label_selector=f"{RUN_UID}={uid},{PART}=output"
    ).items
    assert [cm.metadata.name for cm in offloaded] == [status["output"]["$ref"]]
    check_replay(runs, spec, "bulky-1")


# -- child creation ---------------------------------------------------------------------------


def test_child_run_created_before_a_crash_is_adopted_and_its_end_heard_after_another(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    parent = workflow(
        "parent",
        [kid("lamp"), {"name": "after", "http": http(f"{recorder.url}/after")}],
        output="${{ steps.kid.output }}",
    )
    runs.apply([leaf(recorder), parent, run("order", "parent")])
    child_name = runs.owned_name("order", "kid")
    lives = make_lives()
    lives.die_at("after-child-create")  # the child exists; the parent has not seen it
    assert [c["metadata"]["name"] for c in children(runs, "order")] == [child_name]
    # The next life adopts the child, which runs: its first status write is its start, the
    # second its end (the parent writes nothing meanwhile: its re-issued start only finds the
    # child there); the process dies before the parent heard of that end.
    lives.die_at("after-status-write:2")
    assert runs.status(child_name)["phase"] == "Succeeded"
    assert runs.status("order")["steps"]["kid"]["phase"] == "Running"
    lives.start()
    status = runs.wait("order")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"packed": "lamp"}
    assert [c["metadata"]["name"] for c in children(runs, "order")] == [child_name]
    assert [call.body for call in recorder.effects_on("/pack")] == [{"item": "lamp"}]
    assert keys(recorder, "/pack") == [f"{uid_of(runs, child_name)}/pack/1"]
    assert keys(recorder, "/after") == [f"{uid_of(runs, 'order')}/after/1"]
    check_replay(runs, parent, "order")
    check_replay(runs, leaf(recorder), child_name)


# -- forEach and parallel ---------------------------------------------------------------------


def test_a_fan_out_half_started_by_a_crash_starts_each_instance_once(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    """One batch starts five things side by side: three items of a forEach of child runs (of
    four, three at a time), a Job and a call, in parallel branches; the operator dies after the
    second."""
    items = ["a", "b", "c", "d"]
    each = {"items": "input.items", "concurrency": 3, "step": kid("${{ item }}")}
    branches = [
        {"name": "a", "steps": [{"name": "each", "forEach": each}]},
        {"name": "b", "steps": [{"name": "bake", "job": {"image": "registry.example/bake:1"}}]},
        {"name": "c", "steps": [{"name": "ping", "http": http(f"{recorder.url}/ping")}]},
    ]
    spec = workflow(
        "fan",
        [{"name": "all", "parallel": {"branches": branches}}],
        output="${{ steps.each.output }}",
    )
    runs.apply([leaf(recorder), spec, run("fan-1", "fan", {"items": items})])
    lives = make_lives()
    lives.die_at("after-command:2")
    assert len(children(runs, "fan-1")) < 3, "the fan-out was not cut short"
    lives.start()
    status = runs.wait("fan-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == [{"packed": item} for item in items]
    kids = children(runs, "fan-1")
    assert sorted(k["spec"]["input"]["item"] for k in kids) == items
    assert all(k["metadata"]["name"].endswith("-1") for k in kids), "a second attempt"
    assert sorted(call.body["item"] for call in recorder.effects_on("/pack")) == items
    assert len(keys(recorder, "/pack")) == len(items)
    assert keys(recorder, "/ping") == [f"{uid_of(runs, 'fan-1')}/ping/1"]
    assert jobs_of(runs, "fan-1") == [("bake", "1")]
    check_replay(runs, spec, "fan-1")
    for child in kids:
        check_replay(runs, leaf(recorder), child["metadata"]["name"])


def test_a_child_and_a_job_made_under_the_names_of_before_are_adopted_not_made_twice(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    """A run in flight while the operator is upgraded: its child run and its Job were made
    under the old rule's names (`<run>-<key>-<attempt>`, no uid). The resumed run finds them by
    their labels and goes on with them: one child, one Job, one call, under the old names."""
    build = {"image": "registry.example/build:1", "podAnnotations": kwok(duration="2s")}
    branches = [
        {"name": "a", "steps": [kid("lamp")]},
        {"name": "b", "steps": [{"name": "build", "job": build}]},
    ]
    spec = workflow("legacy", [{"name": "work", "parallel": {"branches": branches}}])
    runs.apply([leaf(recorder), spec, run("old-1", "legacy")])
    lives = make_lives()
    lives.die_at("after-status-write:1")  # both attempts committed, neither performed
    uid = uid_of(runs, "old-1")
    ref = RunRef("old-1", runs.namespace, uid)
    child = child_manifest(
        ref,
        StartChildRun(key="kid", step="kid", attempt=1, name="old-1-kid-1",
                      workflow_ref="leaf", input={"item": "lamp"}, parent_close_policy="terminate"),
        OperatorSettings(),
    )  # fmt: skip
    job = build_job(
        ref,
        StartActivity(key="build", step="build", kind="job", spec=build, attempt=1,
                      idempotency_key=f"{uid}/build/1", start_to_close=None, heartbeat=None),
        OperatorSettings(),
    )  # fmt: skip
    job["metadata"]["name"] = "old-1-build-1"
    runs.apply([child])
    client.BatchV1Api(runs.cluster.api_client).create_namespaced_job(runs.namespace, job)
    lives.start()
    status = runs.wait("old-1")
    assert status["phase"] == "Succeeded", status
    assert [c["metadata"]["name"] for c in children(runs, "old-1")] == ["old-1-kid-1"]
    batch = client.BatchV1Api(runs.cluster.api_client)
    listing = batch.list_namespaced_job(runs.namespace, label_selector=f"{RUN_UID}={uid}")
    assert [j.metadata.name for j in listing.items] == ["old-1-build-1"]
    assert keys(recorder, "/pack") == [f"{uid_of(runs, 'old-1-kid-1')}/pack/1"]
    check_replay(runs, spec, "old-1")


# -- a Job that finishes while no operator runs -----------------------------------------------


def test_a_job_that_finished_while_the_operator_was_down_keeps_its_output_past_the_job_ttl(
    runs: Runs, make_lives: LivesFactory
) -> None:
    """The Job's pod holds its output, and the TTL controller deletes the pod first. A Job that
    finished while no operator ran keeps it until its run has committed the outcome, however
    long after `--job-ttl` that is; then the Job goes after `--job-ttl`."""
    build = {
        "image": "registry.example/build:1",
        "podAnnotations": kwok(duration="3s", message={"artifact": "b-7"}),
    }
    spec = workflow("bake", [{"name": "build", "job": build}], output="${{ steps.build.output }}")
    runs.apply([spec, run("bake-1", "bake")])
    lives = make_lives("--job-ttl", "1")
    lives.start()
    wait_until("the Job", lambda: jobs_of(runs, "bake-1") == [("build", "1")])
    lives.kill()
    batch = client.BatchV1Api(runs.cluster.api_client)
    selector = f"{RUN_UID}={uid_of(runs, 'bake-1')}"

    def finished() -> bool:
        (job,) = batch.list_namespaced_job(runs.namespace, label_selector=selector).items
        return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])

    wait_until("the Job to finish", finished)
    time.sleep(5)  # five times the TTL: the TTL controller would have taken the pod by now
    pods = client.CoreV1Api(runs.cluster.api_client).list_namespaced_pod(
        runs.namespace, label_selector=selector
    )
    assert [p.status.phase for p in pods.items] == ["Succeeded"]

    lives.start()
    status = runs.wait("bake-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"artifact": "b-7"}
    assert status["steps"]["build"]["attempts"] == 1
    # Committed: the Job now has the short TTL, and goes.
    wait_until("the Job to be deleted after its TTL", lambda: jobs_of(runs, "bake-1") == [])


# -- cancel and terminate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_cancel", "failpoint"),
    [("compensate", "after-history-append:1"), ("abandon", "after-status-write:1")],
    ids=["cancel-in-history-only", "run-ended-cancelled"],
)
def test_a_crash_right_after_a_cancel_still_terminates_the_child_and_deletes_the_job(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory, on_cancel: str, failpoint: str
) -> None:
    """The cancellation's batch is in the history but not the status (the run then compensates
    before it ends), or the run ended Cancelled in it and its status says so: either way the
    child run it terminates and the Job it deletes must not go on."""
    waiting = workflow("leaf", [{"name": "wait", "waitForSignal": {"name": "finish"}}])
    build = {"image": "registry.example/build:1", "podAnnotations": kwok(duration="10m")}
    branches = [
        {"name": "a", "steps": [kid("x")]},
        {"name": "b", "steps": [{"name": "build", "job": build}]},
    ]
    reserve = {
        "name": "reserve",
        "http": http(f"{recorder.url}/reserve"),
        "compensate": {"http": http(f"{recorder.url}/release")},
    }
    spec = workflow("hold", [reserve, {"name": "work", "parallel": {"branches": branches}}])
    runs.apply([waiting, spec, run("hold-1", "hold", onCancel=on_cancel)])
    child_name = runs.owned_name("hold-1", "kid")
    lives = make_lives()
    lives.start()
    wait_until("the child run", lambda: children(runs, "hold-1"))
    runs.wait(child_name, step="wait", step_phase="Waiting")
    wait_until("the Job", lambda: jobs_of(runs, "hold-1") == [("build", "1")])
    runs.wait("hold-1", step="build", step_phase="Running")
    lives.kill()
    patch_spec(runs, "hold-1", {"cancel": True})
    lives.die_at(failpoint)
    if on_cancel == "compensate":  # nothing of the cancellation done yet
        assert runs.status("hold-1")["phase"] == "Running"
        assert not runs.get(child_name)["spec"].get("cancel")
        assert jobs_of(runs, "hold-1") == [("build", "1")]
    lives.start()
    status = runs.wait("hold-1")
    assert status["phase"] == "Cancelled", status
    child = runs.wait(child_name, timeout=30)
    assert child["phase"] == "Cancelled", child
    wait_until("the Job deleted", lambda: jobs_of(runs, "hold-1") == [])
    uid = uid_of(runs, "hold-1")
    assert keys(recorder, "/reserve") == [f"{uid}/reserve/1"]
    undone = [f"{uid}/reserve/compensate/1"] if on_cancel == "compensate" else []
    assert keys(recorder, "/release") == undone
    check_replay(runs, spec, "hold-1")
    check_replay(runs, waiting, child_name)


# -- retries with backoff ---------------------------------------------------------------------


def test_retries_interrupted_by_crashes_run_each_attempt_once_after_its_backoff(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    recorder.script("/flaky", Reply(500), Reply(503), Reply(body={"done": True}))
    retry = {"maxAttempts": 3, "initialInterval": "1s", "backoffCoefficient": 2, "jitter": 0}
    spec = workflow(
        "flaky",
        [{"name": "flaky", "http": http(f"{recorder.url}/flaky"), "retry": retry}],
        output="${{ steps.flaky.output }}",
    )
    runs.apply([spec, run("flaky-1", "flaky")])
    lives = make_lives()
    lives.die_at("after-status-write:2")  # the start, then attempt 1's failure: in backoff
    assert runs.status("flaky-1")["steps"]["flaky"]["phase"] == "Backoff"
    lives.die_at("after-perform:1")  # the backoff's end: attempt 2 committed and handed over
    assert runs.status("flaky-1")["steps"]["flaky"]["attempts"] == 2
    lives.start()  # re-issues attempt 2, which fails, then waits out the second backoff
    status = runs.wait("flaky-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"done": True}
    assert status["steps"]["flaky"]["attempts"] == 3
    uid = uid_of(runs, "flaky-1")
    assert keys(recorder, "/flaky") == [f"{uid}/flaky/{n}" for n in (1, 2, 3)]
    assert list(recorder.effects) == [f"{uid}/flaky/3"]
    first = {call.key: call.at for call in reversed(recorder.calls_to("/flaky"))}
    # Each retry came no earlier than its backoff after the attempt before it had begun.
    assert first[f"{uid}/flaky/2"] - first[f"{uid}/flaky/1"] >= 1.0
    assert first[f"{uid}/flaky/3"] - first[f"{uid}/flaky/2"] >= 2.0
    check_replay(runs, spec, "flaky-1")


# -- redrive ----------------------------------------------------------------------------------


def test_redrive_interrupted_by_crashes_reruns_only_the_failed_step_once(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    recorder.script("/charge", Reply(500), Reply(body={"charged": True}))
    spec = workflow(
        "order",
        [
            {"name": "reserve", "http": http(f"{recorder.url}/reserve")},
            {"name": "charge", "http": http(f"{recorder.url}/charge"), "retry": {"maxAttempts": 1}},
        ],
        output="${{ steps.charge.output }}",
    )
    runs.apply([spec, run("order-1", "order")])
    lives = make_lives()
    lives.start()
    assert runs.wait("order-1")["phase"] == "Failed"
    lives.kill()
    patch_spec(runs, "order-1", {"redrive": 1})
    lives.die_at("after-history-append:1")  # the redrive is in the history, not the status
    status = runs.status("order-1")
    assert status["phase"] == "Failed", status
    assert not status.get("redrive"), status
    lives.start()  # folds the redrive again and reruns `charge`
    status = runs.wait("order-1", {"Succeeded"})
    assert status["output"] == {"charged": True}
    assert status["redrive"] == 1
    uid = uid_of(runs, "order-1")
    assert keys(recorder, "/reserve") == [f"{uid}/reserve/1"]
    assert keys(recorder, "/charge") == [f"{uid}/charge/1", f"{uid}/charge/2"]
    assert list(recorder.effects) == [f"{uid}/reserve/1", f"{uid}/charge/2"]
    check_replay(runs, spec, "order-1")


# -- suspend ----------------------------------------------------------------------------------


def test_suspend_and_resume_interrupted_by_crashes_hold_then_run_each_step_once(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    spec = workflow(
        "pausable",
        [
            {"name": "gate", "waitForSignal": {"name": "go"}},
            {"name": "second", "http": http(f"{recorder.url}/second")},
            {"name": "third", "http": http(f"{recorder.url}/third")},
        ],
    )
    runs.apply([spec, run("pause-1", "pausable")])
    lives = make_lives()
    lives.start()
    runs.wait("pause-1", step="gate", step_phase="Waiting")
    lives.kill()
    patch_spec(runs, "pause-1", {"suspend": True})
    lives.start("after-status-write:2")  # folds the suspension, then dies at the signal's batch
    runs.wait("pause-1", {"Suspended"})
    send_signal(runs.cluster, runs.namespace, "pause-1", "go")
    lives.wait_death("after-status-write:2")
    status = runs.status("pause-1")
    assert status["phase"] == "Suspended", status
    assert status["steps"]["gate"]["phase"] == "Succeeded"
    assert status["steps"].get("second", {}).get("phase", "Pending") == "Pending", status
    resumed = time.monotonic()
    patch_spec(runs, "pause-1", {"suspend": False})
    lives.die_at("after-status-write:1")  # the resumption committed, `second` not started
    assert recorder.calls_to("/second") == []
    lives.start()
    status = runs.wait("pause-1")
    assert status["phase"] == "Succeeded", status
    uid = uid_of(runs, "pause-1")
    assert keys(recorder, "/second") == [f"{uid}/second/1"]
    assert keys(recorder, "/third") == [f"{uid}/third/1"]
    assert all(call.at >= resumed for call in recorder.calls_to("/second"))
    check_replay(runs, spec, "pause-1")


# -- updates ----------------------------------------------------------------------------------


def test_an_update_accepted_just_before_a_crash_is_answered_and_applied_once(
    runs: Runs, make_lives: LivesFactory
) -> None:
    spec = workflow(
        "counter",
        [{"name": "wait", "waitForSignal": {"name": "done"}}],
        vars={"n": 0},
        updates=[{"name": "bump", "set": {"n": "${{ vars.n + 1 }}"}, "output": "${{ vars.n }}"}],
        output="${{ vars.n }}",
    )
    runs.apply([spec, run("counter-1", "counter")])
    lives = make_lives()
    lives.start()
    runs.wait("counter-1", step="wait", step_phase="Waiting")
    lives.kill()
    request = {"id": "b1", "name": "bump"}
    runs.cluster.kubectl(
        "patch", "workflowrun", "counter-1", "-n", runs.namespace, "--type", "json",
        "-p", json.dumps([{"op": "add", "path": "/spec/updates/-", "value": request}]),
    )  # fmt: skip
    lives.die_at("after-history-append:1")  # accepted in the history, no answer in the status
    status = runs.status("counter-1")
    assert "b1" not in status.get("updates", {}), status
    assert status["vars"] == {"n": 0}
    lives.start()
    answered = wait_until(
        "the update's answer",
        lambda: runs.status("counter-1").get("updates", {}).get("b1"),
        timeout=90,
    )
    assert answered["outcome"] == "Completed"
    assert answered["output"] == 1
    assert runs.status("counter-1")["vars"] == {"n": 1}
    check_replay(runs, spec, "counter-1")
    send_signal(runs.cluster, runs.namespace, "counter-1", "done")
    assert runs.wait("counter-1")["output"] == 1


def test_an_update_whose_step_ended_just_before_a_crash_is_answered_once(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    recorder.script("/hold", Reply(body={"id": "h-1"}))
    spec = workflow(
        "holder",
        [{"name": "wait", "waitForSignal": {"name": "done"}}],
        updates=[
            {
                "name": "hold",
                "steps": [{"name": "hold", "http": http(f"{recorder.url}/hold")}],
                "output": "${{ steps.hold.output.id }}",
            }
        ],
    )
    runs.apply([spec, run("holder-1", "holder")])
    lives = make_lives()
    lives.start()
    runs.wait("holder-1", step="wait", step_phase="Waiting")
    lives.kill()
    request = {"id": "h1", "name": "hold"}
    runs.cluster.kubectl(
        "patch", "workflowrun", "holder-1", "-n", runs.namespace, "--type", "json",
        "-p", json.dumps([{"op": "add", "path": "/spec/updates/-", "value": request}]),
    )  # fmt: skip
    # The acceptance's batch, then the step's result's: in the history, not in the status.
    lives.die_at("after-history-append:2")
    assert runs.status("holder-1")["updates"]["h1"]["outcome"] == "Running"
    lives.start()
    answered = wait_until(
        "the update's answer",
        lambda: runs.status("holder-1")["updates"]["h1"]["outcome"] == "Completed",
        timeout=90,
    )
    assert answered
    assert runs.status("holder-1")["updates"]["h1"]["output"] == "h-1"
    uid = uid_of(runs, "holder-1")
    assert keys(recorder, "/hold") == [f"{uid}/@h1.hold/1"]
    check_replay(runs, spec, "holder-1")


# -- continue-as-new --------------------------------------------------------------------------


def test_a_run_continued_as_new_around_crashes_has_exactly_one_successor(
    runs: Runs, recorder: Recorder, make_lives: LivesFactory
) -> None:
    """The operator dies with the continue committed but the successor not created, then right
    after creating it (twice: the second time the re-issued create finds it there): the run
    ends ContinuedAsNew all the same, with one successor, which runs once."""
    spec = workflow(
        "relay",
        [
            {"name": "work", "http": http(f"{recorder.url}/work", body={"n": "${{ input.n }}"})},
            {
                "name": "next",
                "when": "input.n < 1",
                "continueAsNew": {"input": {"n": "${{ input.n + 1 }}"}},
            },
        ],
    )
    runs.apply([spec, run("relay-0", "relay", {"n": 0})])

    def successors() -> list[str]:
        listing = runs.api.list_namespaced_custom_object(
            "baton.dev", "v1alpha1", runs.namespace, "workflowruns",
            label_selector=f"{CONTINUED_FROM}=relay-0",
        )  # fmt: skip
        return [item["metadata"]["name"] for item in listing["items"]]

    lives = make_lives()
    lives.die_at("after-status-write:2")  # `work` done, the continue committed, nothing created
    status = runs.status("relay-0")
    assert status["phase"] == "Running", status
    assert status["successor"]["ready"] is True, status
    assert successors() == []
    lives.die_at("after-successor-create")  # created; the run has not heard of it
    (successor,) = successors()
    assert successor == status["successor"]["name"]
    assert runs.status("relay-0")["phase"] == "Running"
    lives.die_at("after-successor-create")  # the re-issue finds it (409), dies again
    assert successors() == [successor]
    lives.start()
    first = runs.wait("relay-0")
    assert first["phase"] == "ContinuedAsNew", first
    assert first["continuedAs"] == successor
    last = runs.wait(successor)
    assert last["phase"] == "Succeeded", last
    assert last["continuedFrom"] == "relay-0"
    assert successors() == [successor]
    assert [call.body for call in recorder.effects_on("/work")] == [{"n": 0}, {"n": 1}]
    assert keys(recorder, "/work") == [
        f"{uid_of(runs, 'relay-0')}/work/1",
        f"{uid_of(runs, successor)}/work/1",
    ]
    check_replay(runs, spec, "relay-0")
    check_replay(runs, spec, successor)
