"""Child runs: the `workflow` step creates a WorkflowRun of its own, owned by the parent."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Cluster, Runs
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import baton, http, run, send_signal, wait_created, workflow


def child_step(policy: str = "terminate") -> dict[str, object]:
    return {
        "name": "kid",
        "workflow": {
            "workflowRef": "child",
            "input": {"item": "${{ input.item }}"},
            "parentClosePolicy": policy,
        },
    }


def waiting_child() -> dict[str, object]:
    return workflow("child", [{"name": "wait", "waitForSignal": {"name": "finish"}}])


def test_workflow_step_starts_an_owned_child_run_and_takes_its_output(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "child",
                [
                    {
                        "name": "pack",
                        "http": http(f"{recorder.url}/pack", body={"item": "${{ input.item }}"}),
                    }
                ],
                output={"packed": "${{ input.item }}", "reply": "${{ steps.pack.output }}"},
            ),
            workflow("parent", [child_step()], output="${{ steps.kid.output }}"),
            run("order", "parent", {"item": "lamp"}),
        ]
    )
    status = runs.wait("order")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"packed": "lamp", "reply": {"ok": True}}
    parent = runs.get("order")
    child = runs.get(runs.owned_name("order", "kid"))  # deterministic, from the parent's uid
    assert child["spec"]["workflowRef"] == {"name": "child"}
    assert child["spec"]["input"] == {"item": "lamp"}
    [owner] = child["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "WorkflowRun",
        "order",
        parent["metadata"]["uid"],
    )
    assert owner["controller"] is True
    assert child["status"]["phase"] == "Succeeded"
    assert recorder.calls_to("/pack")[0].body == {"item": "lamp"}


def test_cancelling_the_parent_cancels_a_child_whose_parent_close_policy_is_terminate(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [waiting_child(), workflow("parent", [child_step()]), run("order", "parent", {"item": 1})]
    )
    kid = runs.owned_name("order", "kid")
    wait_created(runs.cluster, runs.namespace, "workflowrun", kid)
    runs.wait(kid, step="wait", step_phase="Waiting")
    baton(runs.cluster, "cancel", "order", "-n", runs.namespace)
    assert runs.wait("order")["phase"] == "Cancelled"
    child = runs.wait(kid)
    assert child["phase"] == "Cancelled", child


def test_cancelling_the_parent_leaves_a_child_whose_parent_close_policy_is_abandon(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            waiting_child(),
            workflow("parent", [child_step("abandon")]),
            run("order", "parent", {"item": 1}),
        ]
    )
    kid = runs.owned_name("order", "kid")
    wait_created(runs.cluster, runs.namespace, "workflowrun", kid)
    runs.wait(kid, step="wait", step_phase="Waiting")
    baton(runs.cluster, "cancel", "order", "-n", runs.namespace)
    assert runs.wait("order")["phase"] == "Cancelled"
    child = runs.get(kid)
    assert not child["spec"].get("cancel")
    assert child["metadata"].get("ownerReferences") is None
    send_signal(runs.cluster, runs.namespace, kid, "finish")
    assert runs.wait(kid)["phase"] == "Succeeded"


def test_failed_child_run_fails_the_parent_step_with_child_failed(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow("child", [{"name": "no", "fail": {"error": "OutOfStock"}}]),
            workflow("parent", [{**child_step(), "retry": {"maxAttempts": 1}}]),
            run("order", "parent", {"item": 1}),
        ]
    )
    status = runs.wait("order")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "ChildFailed"
    assert status["error"]["details"]["error"]["type"] == "OutOfStock", json.dumps(status["error"])


def test_recreated_parent_never_takes_the_result_of_its_deleted_namesakes_abandoned_child(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    parent = workflow(
        "parent",
        [{**child_step("abandon"), "retry": {"maxAttempts": 3, "initialInterval": "200ms"}}],
        output="${{ steps.kid.output }}",
    )
    runs.apply(
        [
            workflow(
                "child",
                [{"name": "pack", "http": http(f"{recorder.url}/pack", body="${{ input }}")}],
                output="${{ input.item }}",
            ),
            parent,
            run("order", "parent", {"item": "old"}),
        ]
    )
    assert runs.wait("order")["output"] == "old"
    old_kid = runs.owned_name("order", "kid")
    # An abandoned child has no owner: it outlives its parent, under its deterministic name.
    runs.cluster.kubectl("delete", "workflowrun", "order", "-n", runs.namespace)
    runs.apply(run("order", "parent", {"item": "new"}))
    status = runs.wait("order")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == "new"
    assert [c.body for c in recorder.calls_to("/pack")] == [{"item": "old"}, {"item": "new"}]
    # The namesake's children are named from its own uid: the old child is not in the way.
    new_kid = runs.owned_name("order", "kid")
    assert new_kid != old_kid
    assert status["steps"]["kid"]["attempts"] == 1
    assert runs.get(old_kid)["spec"]["input"] == {"item": "old"}
    assert runs.get(new_kid)["spec"]["input"] == {"item": "new"}


def test_for_each_over_a_child_workflow_collects_each_childs_output(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "child",
                [{"name": "ship", "http": http(f"{recorder.url}/ship", body="${{ input }}")}],
                output="${{ input.n * 10 }}",
            ),
            workflow(
                "parent",
                [
                    {
                        "name": "each",
                        "forEach": {
                            "items": "input.items",
                            "concurrency": 2,
                            "step": {
                                "name": "kid",
                                "workflow": {"workflowRef": "child", "input": {"n": "${{ item }}"}},
                            },
                        },
                    }
                ],
                output="${{ steps.each.output }}",
            ),
            run("batch", "parent", {"items": [1, 2, 3]}),
        ]
    )
    status = runs.wait("batch")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == [10, 20, 30]
    assert sorted(c.body["n"] for c in recorder.calls_to("/ship")) == [1, 2, 3]
    children = runs.cluster.kubectl(
        "get", "workflowruns", "-n", runs.namespace,
        "-l", f"baton.dev/parent-uid={runs.get('batch')['metadata']['uid']}", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert len(children) == 3


def test_child_runs_carry_the_uid_of_the_root_of_their_tree(
    runs: Runs, operator: OperatorProcess
) -> None:
    def calls(name: str, target: str) -> dict[str, object]:
        return {"name": name, "workflow": {"workflowRef": target}}

    runs.apply(
        [
            workflow("leaf", [{"name": "note", "set": {"done": True}}]),
            workflow("middle", [calls("down", "leaf")]),
            workflow("top", [calls("down", "middle")]),
            run("tree", "top"),
        ]
    )
    assert runs.wait("tree")["phase"] == "Succeeded"
    root = runs.get("tree")["metadata"]["uid"]
    middle_name = runs.owned_name("tree", "down")
    middle, leaf = runs.get(middle_name), runs.get(runs.owned_name(middle_name, "down"))
    assert middle["metadata"]["labels"]["baton.dev/root-uid"] == root
    assert leaf["metadata"]["labels"]["baton.dev/root-uid"] == root
    assert leaf["metadata"]["labels"]["baton.dev/parent-uid"] == middle["metadata"]["uid"]


def test_shards_split_runs_between_operators_and_children_stay_in_their_shard(
    runs: Runs, crds: Cluster, tmp_path: Path
) -> None:
    namespace = runs.namespace
    sharded, plain = (
        OperatorProcess(
            crds.env, tmp_path / f"{name}.log", "--namespace", namespace, *args, verbose=False
        )
        for name, args in (("shard-a", ("--shard", "a")), ("plain", ()))
    )
    try:
        for process in (sharded, plain):
            process.start()
        in_a = run("in-a", "parent", {"item": 1})
        in_a["metadata"]["labels"] = {"baton.dev/shard": "a"}
        runs.apply(
            [
                # A Job step: each shard watches only its own Jobs.
                workflow("child", [{"name": "build", "job": {"image": "registry.example/b:1"}}]),
                workflow("parent", [child_step()]),
                in_a,
                run("unsharded", "child"),
            ]
        )
        assert runs.wait("in-a", timeout=90)["phase"] == "Succeeded"
        assert runs.wait("unsharded", timeout=90)["phase"] == "Succeeded"
        kid = runs.owned_name("in-a", "kid")
        child = runs.get(kid)
        assert child["metadata"]["labels"]["baton.dev/shard"] == "a"

        def ended(process: OperatorProcess) -> set[str]:
            return {line.split(f"{namespace}/")[1].split()[0] for line in process.lines(" ended ")}

        assert ended(sharded) == {"in-a", kid}
        assert ended(plain) == {"unsharded"}
    finally:
        for process in (sharded, plain):
            process.stop()


def test_children_of_long_named_parents_that_differ_past_the_cut_get_valid_distinct_names(
    runs: Runs, operator: OperatorProcess
) -> None:
    """Two parents named alike for 90 characters: their children's names are cut to 63, and
    used to be the same name, so the second parent adopted the first one's child."""
    prefix = "a-parent-whose-name-is-long-enough-to-be-cut-" * 2
    parents = [f"{prefix}one", f"{prefix}two"]
    runs.apply(
        [
            workflow("child", [{"name": "echo", "set": {"item": "${{ input.item }}"}}],
                     output="${{ vars.item }}"),
            workflow("parent", [child_step()], output="${{ steps.kid.output }}"),
            *(run(name, "parent", {"item": name[-3:]}) for name in parents),
        ]
    )  # fmt: skip
    for name in parents:
        status = runs.wait(name)
        assert status["phase"] == "Succeeded", status
        assert status["output"] == name[-3:]
    kids = [runs.owned_name(name, "kid") for name in parents]
    assert kids[0] != kids[1]
    for parent, kid in zip(parents, kids, strict=True):
        assert len(kid) <= 63
        assert kid.startswith(prefix[:40])
        child = runs.get(kid)
        labels = child["metadata"]["labels"]
        assert labels["baton.dev/parent-uid"] == runs.get(parent)["metadata"]["uid"]
        assert child["spec"]["input"] == {"item": parent[-3:]}
        assert child["status"]["phase"] == "Succeeded"
