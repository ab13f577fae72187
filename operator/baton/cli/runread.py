"""What Baton's readers take from the cluster about a run: the run itself, the definition
snapshot it follows, its child runs, its recorded history, its offloaded outputs, the pods of its
Job steps and their logs, and its Events.

The one read path of the command line (`baton get`, `describe`, `history`, `logs`, `query`) and
of the web view (`baton ui`): both show the same data, read the same way, so what a page shows
and what a command prints can never disagree. Every function takes the `Kube` of the reader, so
each request carries the reader's own rights; the API server's refusals propagate as `ApiError`
for the caller to word (a one-line CommandError, an HTTP status). Nothing here verifies the
operator's seals: only the operator holds the key, and readers only display.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from baton.api.labels import PARENT_UID
from baton.cli.podlogs import CONTAINER, StepPod, pod_selector, step_pods
from baton.engine.events import HistoryEntry
from baton.store.history import read_history
from baton.store.kube import Kube, core_path, path_of
from baton.store.ref import RunRef
from baton.store.snapshots import REF, Snapshots

RUNS = "workflowruns"
WORKFLOWS = "workflows"
POOLS = "workerpools"


def run_ref(run: Mapping[str, Any]) -> RunRef:
    """The identity of a run object as the store addresses it."""
    metadata = run.get("metadata") or {}
    return RunRef(str(metadata["name"]), str(metadata["namespace"]), str(metadata["uid"]))


async def read_run(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    """The WorkflowRun `name`, or None when there is none."""
    return await kube.get(path_of(RUNS, namespace, name))


async def read_definition(kube: Kube, run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The definition the run follows: its snapshot (`status.definition`), or the inline
    `spec.workflow` of a run not started yet; None when neither exists (deleted snapshot)."""
    status = run.get("status") or {}
    snapshot = (status.get("definition") or {}).get("configMap")
    if snapshot:
        snapshots = Snapshots(kube, run_ref(run), {}, {})
        loaded = await snapshots.load_definition(str(snapshot), verify=False)
        return None if loaded is None else loaded[0]
    inline = (run.get("spec") or {}).get("workflow")
    return inline if isinstance(inline, dict) else None


async def read_children(kube: Kube, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The child runs the run started (`workflow` steps), found by their parent label."""
    ref = run_ref(run)
    return await kube.list(path_of(RUNS, ref.namespace), label_selector=f"{PARENT_UID}={ref.uid}")


async def read_run_history(kube: Kube, run: Mapping[str, Any]) -> list[HistoryEntry]:
    """The run's recorded events, in order."""
    ref = run_ref(run)
    return await read_history(kube, ref.namespace, ref.uid)


def output_refs(value: Any) -> list[str]:
    """The names of the offloaded-output ConfigMaps referenced anywhere in `value` (a status)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        if set(value) == {REF}:
            return [str(value[REF])]
        for item in value.values():
            found += output_refs(item)
    elif isinstance(value, list):
        for item in value:
            found += output_refs(item)
    return found


async def read_output(kube: Kube, run: Mapping[str, Any], name: str) -> Any:
    """The output offloaded to the ConfigMap `name`, checked against the hash in its name
    (SnapshotLostError when it is gone, SnapshotTamperedError when it was changed)."""
    snapshots = Snapshots(kube, run_ref(run), {}, {})
    return (await snapshots.inline({"output": {REF: name}}))["output"]


async def read_job_pods(kube: Kube, run: Mapping[str, Any]) -> list[StepPod]:
    """The pods of the run's Job steps that still exist, oldest first."""
    ref = run_ref(run)
    pods = await kube.list(core_path("pods", ref.namespace), label_selector=pod_selector(ref.uid))
    return step_pods(pods)


def pod_log(
    kube: Kube, namespace: str, pod: str, *, follow: bool = False, limit_bytes: int | None = None
) -> AsyncIterator[bytes]:
    """The log of a Job step's pod (its one container) as it arrives; with `follow` it goes
    on while the pod writes."""
    query = {"container": CONTAINER}
    if follow:
        query["follow"] = "true"
    if limit_bytes is not None:
        query["limitBytes"] = str(limit_bytes)
    return kube.stream(f"{core_path('pods', namespace, pod)}/log", **query)


async def read_events(kube: Kube, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes Events about the run (its transitions, refusals), oldest first."""
    ref = run_ref(run)
    listing = await kube.get(
        core_path("events", ref.namespace),
        fieldSelector=f"involvedObject.uid={ref.uid}",
    )
    items = list((listing or {}).get("items") or [])

    def when(event: Mapping[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    return sorted(items, key=when)
