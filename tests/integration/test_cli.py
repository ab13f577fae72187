"""The `baton` run commands against a real API server: what they write, what they read, and
their one-line errors. No operator runs here: the tests play its part (writing status through
the status subresource and history through `HistoryLog`), which pins the CLI's contract with
the API rather than with one operator build. One behaviour per test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from baton.cli.main import main
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    HistoryEntry,
    RunStarted,
    SignalReceived,
)
from baton.store.history import HistoryLog, HistoryPosition
from baton.store.kube import ApiError, Kube
from baton.store.ref import RunRef
from baton.store.snapshots import Snapshots

if TYPE_CHECKING:
    from clusterkit import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

VENV_BIN = Path(sys.executable).parent
"""Where `uv sync` installed the console scripts `baton` and `kubectl-baton`."""

WORKFLOW = {
    "apiVersion": "baton.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "purchase"},
    "spec": {"steps": [{"name": "pay", "http": {"url": "http://payments/charge"}}]},
}


class Baton:
    """`baton <command> ... -n <namespace> --kubeconfig <cluster>`, in this process."""

    def __init__(self, cluster: Cluster, namespace: str, capsys: pytest.CaptureFixture[str]):
        self.cluster = cluster
        self.namespace = namespace
        self.capsys = capsys

    def flags(self) -> list[str]:
        return ["-n", self.namespace, "--kubeconfig", str(self.cluster.kubeconfig)]

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of one command."""
        self.capsys.readouterr()
        code = main([*argv, *self.flags()])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str) -> str:
        code, out, err = self(*argv)
        assert code == 0, err
        return out

    def error(self, *argv: str) -> str:
        """The one line of a command that must fail with a usage or API error."""
        code, out, err = self(*argv)
        assert code == 2, f"exit {code}: {out}"
        assert err.count("\n") == 1, f"expected one line, got {err!r}"
        assert "Traceback" not in err
        return err.removeprefix("baton: error: ").rstrip("\n")

    def get(self, name: str) -> dict[str, Any]:
        """The run as kubectl sees it."""
        out = self.cluster.kubectl("get", "workflowrun", name, "-n", self.namespace, "-o", "json")
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def create_run(self, name: str, **spec: Any) -> dict[str, Any]:
        self.cluster.apply(
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "WorkflowRun",
                "metadata": {"name": name},
                "spec": {"workflowRef": {"name": "purchase"}, **spec},
            },
            self.namespace,
        )
        return self.get(name)

    def write_status(self, name: str, status: dict[str, Any]) -> None:
        """What the operator does: a merge patch of `.../workflowruns/NAME/status`."""
        self.cluster.kubectl(
            *("patch", "workflowrun", name, "-n", self.namespace, "--subresource", "status"),
            *("--type", "merge", "-p", json.dumps({"status": status})),
        )


@pytest.fixture
def baton(crds: Cluster, namespace: str, capsys: pytest.CaptureFixture[str]) -> Baton:
    crds.apply(WORKFLOW, namespace)
    return Baton(crds, namespace, capsys)


def plugin_env(cluster: Cluster) -> dict[str, str]:
    """An environment where `kubectl baton` finds the kubectl-baton console script."""
    env = cluster.env
    return {**env, "PATH": f"{cluster.bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{env['PATH']}"}


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    """The first truthy value of `check()`, retried until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


# -- run --------------------------------------------------------------------------------------


def test_run_creates_a_run_of_the_workflow_with_its_input(baton: Baton) -> None:
    name = baton.ok("run", "purchase", "--input", '{"propertyId": "p-7", "amount": 42}').strip()
    assert name.startswith("purchase-")
    run = baton.get(name)
    assert run["spec"]["workflowRef"] == {"name": "purchase"}
    assert run["spec"]["input"] == {"propertyId": "p-7", "amount": 42}


def test_run_takes_a_name_input_from_a_file_and_a_run_timeout(baton: Baton, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text('["a", "b"]', encoding="utf-8")
    out = baton.ok(
        "run", "purchase", "--name", "p-1", "--input", f"@{tmp_path / 'input.json'}",
        "--run-timeout", "1h",
    )  # fmt: skip
    assert out == "p-1\n"
    assert baton.get("p-1")["spec"] == {
        "workflowRef": {"name": "purchase"},
        "input": ["a", "b"],
        "timeout": "1h",
        "cancel": False,
        "suspend": False,
        "redrive": 0,
        "signals": [],
        "updates": [],
    }


def test_run_of_a_missing_workflow_is_one_line(baton: Baton) -> None:
    assert (
        baton.error("run", "nope") == f'workflow "nope" not found in namespace "{baton.namespace}"'
    )


def test_run_refused_by_the_api_server_gives_the_servers_message(baton: Baton) -> None:
    err = baton.error("run", "purchase", "--name", "Not_A_Name")
    assert err.startswith('the API server refused: WorkflowRun.baton.dev "Not_A_Name" is invalid')
    assert "RFC 1123" in err


# -- signal -----------------------------------------------------------------------------------


def test_signals_are_appended_in_order(baton: Baton) -> None:
    baton.create_run("r")
    first = baton.ok("signal", "r", "approve", "--payload", '{"ok": true}')
    second = baton.ok("signal", "r", "updatePriority", "--payload", "3")
    third = baton.ok("signal", "r", "ping")
    assert first == 'workflowrun/r: signal "approve" sent (spec.signals[0])\n'
    assert second.endswith("(spec.signals[1])\n")
    assert third.endswith("(spec.signals[2])\n")
    assert baton.get("r")["spec"]["signals"] == [
        {"name": "approve", "payload": {"ok": True}},
        {"name": "updatePriority", "payload": 3},
        {"name": "ping"},
    ]


def test_concurrent_signals_all_arrive(baton: Baton) -> None:
    # Separate processes, started together: the first ones race to create the list, the rest
    # to append. None may be lost or overwrite another.
    baton.create_run("r")
    env = plugin_env(baton.cluster)
    processes = [
        subprocess.Popen(
            [str(VENV_BIN / "baton"), "signal", "r", f"s{i}", "--payload", str(i), *baton.flags()],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    signals = baton.get("r")["spec"]["signals"]
    assert sorted(s["name"] for s in signals) == [f"s{i}" for i in range(4)]
    assert all(s["payload"] == int(s["name"][1:]) for s in signals)


def test_a_payload_that_is_not_json_is_one_line_and_sends_nothing(baton: Baton) -> None:
    baton.create_run("r")
    err = baton.error("signal", "r", "approve", "--payload", "{ok: true}")
    assert err.startswith("--payload: not JSON (Expecting property name")
    assert baton.get("r")["spec"]["signals"] == []


def test_a_signal_the_crd_refuses_gives_the_servers_message(baton: Baton) -> None:
    baton.create_run("r")
    err = baton.error("signal", "r", "")
    assert err.startswith('the API server refused: WorkflowRun.baton.dev "r" is invalid')
    assert "spec.signals[0].name" in err


# -- cancel, suspend, resume, redrive ---------------------------------------------------------


def test_cancel_suspend_and_resume_set_the_spec(baton: Baton) -> None:
    baton.create_run("r")
    assert baton.ok("suspend", "r") == "workflowrun/r: suspend requested\n"
    assert baton.get("r")["spec"]["suspend"] is True
    assert baton.ok("resume", "r") == "workflowrun/r: resumed\n"
    assert baton.get("r")["spec"]["suspend"] is False
    assert baton.ok("cancel", "r") == "workflowrun/r: cancel requested\n"
    assert baton.get("r")["spec"]["cancel"] is True


def test_redrive_bumps_the_counter_each_time(baton: Baton) -> None:
    baton.create_run("r")
    assert baton.ok("redrive", "r") == "workflowrun/r: redrive 1 requested\n"
    assert baton.ok("redrive", "r") == "workflowrun/r: redrive 2 requested\n"
    assert baton.get("r")["spec"]["redrive"] == 2


def test_concurrent_redrives_are_not_collapsed(baton: Baton) -> None:
    baton.create_run("r")
    results: list[int] = []

    def redrive() -> None:
        results.append(main(["redrive", "r", *baton.flags()]))

    threads = [threading.Thread(target=redrive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [0, 0, 0, 0]
    assert baton.get("r")["spec"]["redrive"] == 4


def test_commands_on_a_missing_run_are_one_line(baton: Baton) -> None:
    expected = f'workflowrun "ghost" not found in namespace "{baton.namespace}"'
    for argv in (
        ["signal", "ghost", "approve"],
        ["cancel", "ghost"],
        ["suspend", "ghost"],
        ["resume", "ghost"],
        ["redrive", "ghost"],
        ["history", "ghost"],
        ["get", "ghost"],
        ["wait", "ghost"],
    ):
        assert baton.error(*argv) == expected, argv


# -- history ----------------------------------------------------------------------------------


def write_history(baton: Baton, name: str, batches: list[list[HistoryEntry]]) -> None:
    """Append `batches` to the run's history as the run loop does, in small chunks."""
    run = baton.get(name)
    uid = run["metadata"]["uid"]
    owner = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "name": name,
        "uid": uid,
        "controller": True,
    }

    async def append() -> None:
        kube = await Kube.connect(str(baton.cluster.kubeconfig))
        try:
            # A tiny chunk size puts every batch in its own ConfigMap: history must be read
            # across chunks, in order.
            log = HistoryLog(kube, RunRef(name, baton.namespace, uid), owner, chunk_bytes=64)
            position = HistoryPosition()
            for batch in batches:
                position = await log.append(position, batch)
        finally:
            await kube.close()

    asyncio.run(append())


T0 = 1_780_000_000.0


def test_history_prints_the_recorded_events_as_a_timeline(baton: Baton) -> None:
    baton.create_run("r")
    uid = baton.get("r")["metadata"]["uid"]
    write_history(
        baton,
        "r",
        [
            [HistoryEntry(T0, RunStarted(input={}, run_name="r", namespace="n", uid=uid))],
            [
                HistoryEntry(T0 + 0.5, ActivityStarted(key="pay", attempt=1)),
                HistoryEntry(
                    T0 + 2,
                    ActivityFailed(
                        key="pay", attempt=1, error={"type": "HttpError", "message": "503"}
                    ),
                ),
            ],
            [HistoryEntry(T0 + 65, SignalReceived(index=0, name="approve", payload=None))],
            [HistoryEntry(T0 + 3600, ActivityCompleted(key="pay", attempt=2, output={"id": 1}))],
        ],
    )
    lines = baton.ok("history", "r").splitlines()
    assert lines[0] == "r: Pending, 5 events over 1h"
    assert [line.split() for line in lines[1:]] == [
        ["0s", "RunStarted"],
        ["500ms", "ActivityStarted", "pay", "attempt", "1"],
        ["2s", "ActivityFailed", "pay", "HttpError:", "503"],
        ["1m5s", "SignalReceived", "approve"],
        ["1h", "ActivityCompleted", "pay", "attempt", "2"],
    ]


def test_history_json_is_the_recorded_entries(baton: Baton) -> None:
    baton.create_run("r")
    write_history(baton, "r", [[HistoryEntry(T0 + 1, ActivityStarted(key="pay", attempt=1))]])
    assert json.loads(baton.ok("history", "r", "--json")) == [
        {"at": T0 + 1, "type": "ActivityStarted", "key": "pay", "attempt": 1}
    ]


def test_history_of_a_run_not_started_yet(baton: Baton) -> None:
    baton.create_run("r")
    assert baton.ok("history", "r") == "r: Pending, no events recorded yet\n"


# -- get --------------------------------------------------------------------------------------


def test_get_lists_runs_with_the_status_the_operator_wrote(baton: Baton) -> None:
    baton.create_run("a")
    baton.create_run("b")
    baton.write_status("a", {"phase": "Running", "currentStep": "pay", "progress": "0/1"})
    lines = baton.ok("get").splitlines()
    assert lines[0].split() == ["NAME", "WORKFLOW", "PHASE", "STEP", "PROGRESS", "AGE"]
    assert lines[1].split()[:5] == ["a", "purchase", "Running", "pay", "0/1"]
    assert lines[2].split()[:3] == ["b", "purchase", "Pending"]


def test_get_json_prints_the_objects_as_kubectl_does(baton: Baton) -> None:
    baton.create_run("r")
    assert json.loads(baton.ok("get", "r", "--json")) == baton.get("r")
    listed = json.loads(baton.ok("get", "-o", "json"))
    kubectl = json.loads(
        baton.cluster.kubectl("get", "workflowruns", "-n", baton.namespace, "-o", "json").stdout
    )
    assert listed == kubectl


def test_get_yaml_and_name_print_what_kubectl_prints(baton: Baton) -> None:
    baton.create_run("r")
    flags = ("-n", baton.namespace)
    kubectl = baton.cluster.kubectl("get", "workflowruns", *flags, "-o", "yaml").stdout
    assert yaml.safe_load(baton.ok("get", "-o", "yaml")) == yaml.safe_load(kubectl)
    kubectl = baton.cluster.kubectl("get", "workflowruns", *flags, "-o", "name").stdout
    assert baton.ok("get", "-o", "name") == kubectl


def test_get_of_an_empty_namespace_says_so(baton: Baton) -> None:
    assert baton.ok("get") == f'no workflowruns in namespace "{baton.namespace}"\n'


def test_get_one_run_shows_steps_output_and_queries(baton: Baton) -> None:
    baton.create_run("r")
    baton.write_status(
        "r",
        {
            "phase": "Succeeded",
            "progress": "2/2",
            "steps": {
                "reserve": {
                    "phase": "Succeeded",
                    "attempts": 1,
                    "startedAt": "2026-07-01T10:00:00Z",
                },
                "pay": {
                    "phase": "Succeeded",
                    "startedAt": "2026-07-01T10:00:01Z",
                    "attempts": 2,
                    "error": {"type": "HttpError", "message": "503"},
                },
            },
            "output": {"transferId": "t-1"},
            "queries": {"amount": 42},
        },
    )
    lines = baton.ok("get", "r").splitlines()
    assert "Phase:     Succeeded" in lines
    assert "Progress:  2/2" in lines
    steps = lines.index("Steps:")
    assert lines[steps + 2].split() == ["reserve", "Succeeded", "1"]
    assert lines[steps + 3].split() == ["pay", "Succeeded", "2", "HttpError:", "503"]
    assert 'Output: {"transferId": "t-1"}' in lines
    assert "  amount: 42" in lines


# -- run --wait -------------------------------------------------------------------------------


@pytest.fixture
def waiting(baton: Baton) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `kubectl baton <argv>` (the plugin, as a user runs it) in the background."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [str(baton.cluster.bin_dir / "kubectl"), "baton", *argv, *baton.flags()],
            env=plugin_env(baton.cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_wait_through_kubectl_follows_the_run_until_it_succeeds(
    baton: Baton, waiting: Callable[..., subprocess.Popen[str]]
) -> None:
    process = waiting("run", "purchase", "--name", "w1", "--wait", "--timeout", "60s")
    assert process.stdout is not None
    assert process.stdout.readline() == "w1\n"
    assert process.stdout.readline().split() == ["0s", "Pending"]
    baton.write_status("w1", {"phase": "Running", "currentStep": "pay", "progress": "0/1"})
    assert process.stdout.readline().split()[1:] == ["Running", "0/1", "pay"]
    baton.write_status(
        "w1", {"phase": "Succeeded", "currentStep": "", "progress": "1/1", "output": {"id": 7}}
    )
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.splitlines()[-2].split()[1:] == ["Succeeded", "1/1"]
    assert out.splitlines()[-1] == 'output: {"id": 7}'


def test_run_wait_exits_one_when_the_run_fails(baton: Baton) -> None:
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            main(["run", "purchase", "--name", "w2", "--wait", *baton.flags()])
        )
    )
    thread.start()
    try:
        eventually(lambda: baton.cluster.kubectl(
            "get", "workflowrun", "w2", "-n", baton.namespace, check=False
        ).returncode == 0)  # fmt: skip
        baton.write_status(
            "w2",
            {"phase": "Failed", "error": {"type": "HttpError", "message": "503", "step": "pay"}},
        )
    finally:
        thread.join(timeout=30)
    assert result == [1]
    out = baton.capsys.readouterr().out
    assert out.splitlines()[-1] == "error: HttpError: 503 (step pay)"


def test_wait_times_out_in_one_line(baton: Baton) -> None:
    baton.create_run("r")
    err = baton.error("wait", "r", "--timeout", "1s")
    assert err == 'timed out after 1s waiting for workflowrun "r" to end (it is Pending)'


def test_the_kubectl_plugin_reports_errors_in_one_line(baton: Baton) -> None:
    done = subprocess.run(
        [str(baton.cluster.bin_dir / "kubectl"), "baton", "cancel", "ghost", *baton.flags()],
        env=plugin_env(baton.cluster),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f'baton: error: workflowrun "ghost" not found in namespace "{baton.namespace}"\n'
    )


# -- describe, query, logs, delete, resubmit: the installed `baton`, as a user runs it ------------


def cli(baton: Baton, *argv: str) -> subprocess.CompletedProcess[str]:
    """The installed `baton` console script, in its own process, with NO_COLOR unset: stdout
    is a pipe, so there must be no colour anyway."""
    env = {k: v for k, v in plugin_env(baton.cluster).items() if k != "NO_COLOR"}
    return subprocess.run(
        [str(VENV_BIN / "baton"), *argv, *baton.flags()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def save_definition(baton: Baton, name: str, spec: dict[str, Any]) -> str:
    """What the operator does when a run starts: the definition snapshot ConfigMap."""
    run = baton.get(name)
    ref = RunRef(name, baton.namespace, run["metadata"]["uid"])
    owner = {"apiVersion": "baton.dev/v1alpha1", "kind": "WorkflowRun", "name": name,
             "uid": ref.uid, "controller": True}  # fmt: skip
    labels = {"baton.dev/run-uid": ref.uid, "baton.dev/run": name}

    async def save() -> str:
        kube = await Kube.connect(str(baton.cluster.kubeconfig))
        try:
            return await Snapshots(kube, ref, owner, labels).save_definition(spec)
        finally:
            await kube.close()

    return asyncio.run(save())


def test_describe_draws_the_step_tree_with_the_child_run(baton: Baton) -> None:
    baton.create_run("r")
    uid = baton.get("r")["metadata"]["uid"]
    spec = {
        "steps": [
            {"name": "checks", "parallel": {"branches": [
                {"name": "credit", "steps": [{"name": "credit", "http": {"url": "http://c"}}]},
            ]}},
            {"name": "sub", "workflow": {"workflowRef": "purchase"}},
        ]
    }  # fmt: skip
    config_map = save_definition(baton, "r", spec)
    baton.cluster.apply(
        {
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "WorkflowRun",
            "metadata": {
                "name": "r-sub-1",
                "labels": {"baton.dev/parent-uid": uid},
                "annotations": {"baton.dev/activity-key": "sub", "baton.dev/attempt": "1"},
            },
            "spec": {"workflowRef": {"name": "purchase"}},
        },
        baton.namespace,
    )
    at = "2026-07-01T10:00:0"
    baton.write_status("r", {
        "phase": "Running",
        "definition": {"configMap": config_map},
        "steps": {
            "checks": {"phase": "Succeeded", "startedAt": f"{at}0Z", "finishedAt": f"{at}5Z"},
            "credit": {"phase": "Succeeded", "attempts": 2, "startedAt": f"{at}0Z",
                       "finishedAt": f"{at}4Z", "error": {"type": "HttpError", "message": "503"}},
            "sub": {"phase": "Running", "attempts": 1, "startedAt": f"{at}5Z"},
        },
    })  # fmt: skip
    done = cli(baton, "describe", "r")
    assert done.returncode == 0, done.stderr
    assert "\033[" not in done.stdout
    tree = done.stdout.splitlines()
    tree = tree[tree.index("") + 1 :]
    assert tree[0].split() == ["STEP", "PHASE", "ATTEMPTS", "DURATION", "DETAIL"]
    assert tree[1].split() == ["checks", "Succeeded", "5s"]
    assert tree[2].split() == ["└─", "branch", "credit"]
    assert tree[3].split() == ["└─", "credit", "Succeeded", "2", "4s", "HttpError:", "503"]
    assert tree[4].split()[:3] == ["sub", "Running", "1"]
    assert tree[4].split()[-2:] == ["workflowrun/r-sub-1", "Pending"]


def test_query_prints_the_published_queries_or_one_value(baton: Baton) -> None:
    baton.create_run("r")
    baton.write_status("r", {"queries": {"amount": 42, "owner": {"name": "ada"}}})
    listed = cli(baton, "query", "r")
    assert listed.returncode == 0, listed.stderr
    assert [line.split(maxsplit=1) for line in listed.stdout.splitlines()] == [
        ["NAME", "VALUE"], ["amount", "42"], ["owner", '{"name": "ada"}'],
    ]  # fmt: skip
    one = cli(baton, "query", "r", "owner", "-o", "yaml")
    assert one.stdout == "name: ada\n"
    missing = cli(baton, "query", "r", "nope")
    assert missing.returncode == 2
    assert missing.stderr == (
        'baton: error: workflowrun "r" has no query "nope" (its queries: amount, owner)\n'
    )


def test_logs_of_a_step_whose_pods_are_gone_say_why(baton: Baton) -> None:
    baton.create_run("r")
    baton.write_status("r", {"phase": "Failed", "steps": {"pay": {
        "phase": "Failed", "attempts": 2, "error": {"type": "JobFailed", "message": "exit 3"},
    }}})  # fmt: skip
    done = cli(baton, "logs", "r", "pay")
    assert done.returncode == 2
    assert done.stderr == (
        'baton: error: no pod of step "pay" of workflowrun "r" is left: it is not a Job step, '
        "or its Job was deleted (ttlSecondsAfterFinished, or a redrive); its last error: "
        "JobFailed: exit 3\n"
    )


def test_logs_find_the_pod_of_the_latest_attempt_by_the_job_labels(baton: Baton) -> None:
    baton.create_run("r")
    uid = baton.get("r")["metadata"]["uid"]
    for attempt in (1, 2):
        baton.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"r-pay-{attempt}-x",
                    "labels": {"baton.dev/run-uid": uid, "baton.dev/part": "job"},
                    "annotations": {"baton.dev/activity-key": "pay",
                                    "baton.dev/attempt": str(attempt)},
                },
                "spec": {"containers": [{"name": "main", "image": "pay"}]},
            },
            baton.namespace,
        )  # fmt: skip
    done = cli(baton, "logs", "r", "pay")
    # kwok's simulated kubelets serve no logs here (the API server cannot even resolve their
    # node names): its answer is reported in one line, after the line naming the pod chosen.
    assert done.stderr.splitlines()[0].startswith("==> pay, attempt 2 (pod r-pay-2-x, ")
    assert done.returncode == 2, done.stdout
    assert done.stderr.splitlines()[1].startswith(
        "baton: error: cannot read the log of pod r-pay-2-x: "
    ), done.stderr


def test_resubmit_starts_a_new_run_with_the_same_input_and_delete_removes_runs(
    baton: Baton,
) -> None:
    baton.create_run("r", input={"amount": 5}, signals=[{"name": "go"}])
    done = cli(baton, "retry", "r", "--name", "r2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "r2\n"
    again = baton.get("r2")
    assert again["spec"]["input"] == {"amount": 5}
    assert again["spec"]["workflowRef"] == {"name": "purchase"}
    assert again["spec"]["signals"] == []  # the original's signals are not carried over
    assert again["metadata"]["annotations"]["baton.dev/resubmitted-from"] == "r"
    deleted = cli(baton, "delete", "r", "r2")
    assert (
        deleted.stdout == 'workflowrun.baton.dev "r" deleted\nworkflowrun.baton.dev "r2" deleted\n'
    )
    assert baton.ok("get", "-o", "name") == ""
    gone = cli(baton, "delete", "r")
    assert (
        gone.stderr == f'baton: error: workflowrun "r" not found in namespace "{baton.namespace}"\n'
    )


def test_bash_completes_run_and_signal_names_from_the_cluster(baton: Baton) -> None:
    baton.cluster.apply(
        {**WORKFLOW, "metadata": {"name": "approvals"}, "spec": {"steps": [
            {"name": "wait", "waitForSignal": {"name": "approve"}},
        ], "signalHandlers": [{"signal": "updatePriority", "set": {"p": "${{ signal }}"}}]}},
        baton.namespace,
    )  # fmt: skip
    baton.create_run("purchase-1")
    baton.cluster.apply(
        {"apiVersion": "baton.dev/v1alpha1", "kind": "WorkflowRun",
         "metadata": {"name": "approval-1"}, "spec": {"workflowRef": {"name": "approvals"}}},
        baton.namespace,
    )  # fmt: skip
    flags = " ".join(baton.flags())

    def complete(words: str, cursor: int) -> str:
        script = (
            "source <(baton completion bash)\n"
            f"COMP_WORDS=(baton {words} {flags}); COMP_CWORD={cursor}; _baton\n"
            'echo "${COMPREPLY[*]}"\n'
        )
        done = subprocess.run(["bash", "-c", script], env=plugin_env(baton.cluster),
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        assert done.stderr == ""
        return done.stdout.strip()

    assert complete("signal ''", 2) == "approval-1 purchase-1"
    assert complete("describe p", 2) == "purchase-1"
    assert complete("signal approval-1 ''", 3) == "approve updatePriority"


def test_kubectl_completes_the_plugins_arguments(baton: Baton) -> None:
    baton.create_run("purchase-1")
    done = subprocess.run(
        [str(baton.cluster.bin_dir / "kubectl"), "__complete", "baton", "describe",
         *baton.flags(), "pur"],
        env=plugin_env(baton.cluster), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines() == ["purchase-1", ":4"]


def test_kube_stream_hands_over_each_chunk_as_it_arrives(baton: Baton) -> None:
    # What `baton logs -f` relies on, shown with a body that never ends by itself: a watch.
    # Each event must arrive while the request is still open, not when it closes.
    async def first_event() -> bytes:
        kube = await Kube.connect(str(baton.cluster.kubeconfig))
        try:
            path = f"/apis/baton.dev/v1alpha1/namespaces/{baton.namespace}/workflowruns"
            for _ in range(50):
                try:
                    async for chunk in kube.stream(path, watch="true", timeoutSeconds="30"):
                        return chunk
                except ApiError as exc:
                    if exc.status != 429:  # the watch cache of a new CRD is still starting
                        raise
                    await asyncio.sleep(0.2)
            return b""
        finally:
            await kube.close()

    async def watch_while_creating() -> bytes:
        watching = asyncio.ensure_future(first_event())
        await asyncio.sleep(1)  # the watch is open (an early create is seen as ADDED anyway)
        await asyncio.to_thread(baton.create_run, "streamed")
        return await asyncio.wait_for(watching, 20)

    chunk = asyncio.run(watch_while_creating())
    assert b'"type":"ADDED"' in chunk
    assert b'"name":"streamed"' in chunk


def test_kube_stream_reports_a_refusal_as_an_api_error(baton: Baton) -> None:
    async def read_missing() -> ApiError:
        kube = await Kube.connect(str(baton.cluster.kubeconfig))
        try:
            async for _ in kube.stream(f"/api/v1/namespaces/{baton.namespace}/pods/ghost/log"):
                pass
        except ApiError as exc:
            return exc
        finally:
            await kube.close()
        raise AssertionError("no error")

    error = asyncio.run(read_missing())
    assert error.status == 404
    assert error.message == 'pods "ghost" not found'
