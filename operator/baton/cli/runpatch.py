"""The requests the run commands send: a new WorkflowRun, and patches of a run's spec.

Pure functions, so the exact bodies sent to the API server are unit-tested without a cluster.
Every patch is written so that concurrent users cannot undo each other's writes:

- a signal is appended with the JSON patch `add /spec/signals/-` (an update request with
  `add /spec/updates/-`), which the API server applies to the object as it is when the patch
  lands: two signals sent at once both arrive, in the order the server took them. When the list
  does not exist yet it is created with a `test` that it is still absent, so a list created in
  between is never replaced (the patch fails and the command appends instead);
- a redrive sets `spec.redrive` to the value read plus one, guarded by a `test` of the value
  read: two concurrent redrives make two bumps, never one;
- cancel and suspend are merge patches of one boolean, which are idempotent anyway.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from baton.api.labels import API_VERSION, GROUP, RESUBMITTED_FROM, SHARD

KIND = "WorkflowRun"
GENERATED_NAME_LIMIT = 58
"""The API server keeps at most this many characters of a generateName (and adds 5)."""


def run_manifest(
    workflow: str,
    *,
    input: Any = None,
    has_input: bool = False,
    name: str | None = None,
    timeout: str | None = None,
) -> dict[str, Any]:
    """A WorkflowRun of `workflow`: named `name`, else `<workflow>-<random suffix>`.

    `has_input` tells an explicit `null` input apart from none given."""
    metadata = {"name": name} if name else {"generateName": f"{workflow}-"}
    spec: dict[str, Any] = {"workflowRef": {"name": workflow}}
    if has_input:
        spec["input"] = input
    if timeout is not None:
        spec["timeout"] = timeout
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


RESUBMITTED_SPEC = ("workflowRef", "workflow", "input", "timeout", "onCancel", "ttlAfterFinished")
"""What a resubmitted run copies of the original's spec: what it runs, with what input, under
which limits. Not its signals, cancel, suspend or redrive: those belong to the original."""


def resubmit_manifest(run: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """A new WorkflowRun of the same workflow with the same input as `run`, named `name`, else
    `<workflow>-<random suffix>` (`<run>-...` for an inline workflow).

    It keeps the user's labels (and the shard label, which picks the operator) but none that
    Baton's operator sets, and notes the original in an annotation."""
    metadata = run.get("metadata") or {}
    spec = run.get("spec") or {}
    ref = spec.get("workflowRef") or {}
    base = str(ref.get("name") or metadata.get("name") or "run")
    labels = {
        k: v
        for k, v in (metadata.get("labels") or {}).items()
        if k == SHARD or not k.startswith(f"{GROUP}/")
    }
    new_metadata: dict[str, Any] = {"name": name} if name else {"generateName": f"{base}-"}
    if labels:
        new_metadata["labels"] = labels
    new_metadata["annotations"] = {RESUBMITTED_FROM: str(metadata.get("name", ""))}
    new_spec = {key: spec[key] for key in RESUBMITTED_SPEC if key in spec}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": new_metadata, "spec": new_spec}


def signal_value(name: str, payload: Any = None, *, has_payload: bool = False) -> dict[str, Any]:
    """One entry of `spec.signals`."""
    return {"name": name, "payload": payload} if has_payload else {"name": name}


def signal_patch(
    signal: Mapping[str, Any], *, list_exists: bool, field: str = "signals"
) -> list[dict[str, Any]]:
    """The JSON patch that appends `signal` to `spec.signals` (creating the list if absent);
    `field: updates` appends an update request to `spec.updates` the same way."""
    if list_exists:
        return [{"op": "add", "path": f"/spec/{field}/-", "value": dict(signal)}]
    # A `test` for null passes only while the member is absent (RFC 6902 as the API server
    # implements it), so this never overwrites a list another client created meanwhile.
    return [
        {"op": "test", "path": f"/spec/{field}", "value": None},
        {"op": "add", "path": f"/spec/{field}", "value": [dict(signal)]},
    ]


def has_signal_list(run: Mapping[str, Any], field: str = "signals") -> bool:
    """Whether the run's spec has a `signals` (or `updates`) list to append to."""
    return isinstance((run.get("spec") or {}).get(field), list)


def new_update_id() -> str:
    """A fresh id for an update request, when its sender names none."""
    return f"u-{secrets.token_hex(6)}"


def update_value(
    id: str, name: str, payload: Any = None, *, has_payload: bool = False
) -> dict[str, Any]:
    """One entry of `spec.updates`."""
    entry: dict[str, Any] = {"id": id, "name": name}
    if has_payload:
        entry["payload"] = payload
    return entry


def redrive_value(run: Mapping[str, Any]) -> int | None:
    """The run's `spec.redrive` as stored (None when absent)."""
    value = (run.get("spec") or {}).get("redrive")
    return value if isinstance(value, int) else None


def redrive_patch(current: int | None) -> list[dict[str, Any]]:
    """The JSON patch that bumps `spec.redrive` from `current`, only if it still is `current`."""
    if current is None:
        return [
            {"op": "test", "path": "/spec/redrive", "value": None},
            {"op": "add", "path": "/spec/redrive", "value": 1},
        ]
    return [
        {"op": "test", "path": "/spec/redrive", "value": current},
        {"op": "replace", "path": "/spec/redrive", "value": current + 1},
    ]


def flag_patch(field: str, value: bool) -> dict[str, Any]:
    """The merge patch that sets the boolean `spec.<field>` (cancel, suspend)."""
    return {"spec": {field: value}}
