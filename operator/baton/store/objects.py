"""Bodies of the objects a run owns, built one way: labelled with the run and owned by it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baton.api.labels import RUN_UID, owned_labels
from baton.executors.base import RunRef
from baton.store.kube import ApiError, Kube, core_path


def owned_config_map(
    run: RunRef,
    owner: Mapping[str, Any],
    labels: Mapping[str, str],
    *,
    name: str,
    part: str,
    data: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    immutable: bool = False,
) -> dict[str, Any]:
    """A ConfigMap of `run` (deleted with it through the ownerReference)."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": run.namespace,
        "labels": owned_labels(run.uid, run.name, part, labels),
        "ownerReferences": [dict(owner)],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": dict(data),
    }
    if immutable:
        body["immutable"] = True
    return body


class NameTakenError(Exception):
    """An object a run creates under a name derived from the run's name exists and belongs to
    another run: a deleted run of the same name whose objects the garbage collector has not
    removed yet (or that were orphaned). Using it would mix the two runs' definitions and
    histories, so the run waits (its loop is restarted with a delay) until it is gone."""


def belongs_to(obj: Mapping[str, Any], run: RunRef) -> bool:
    """True when `obj` carries `run`'s uid label (it was made for this very run)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_UID) == run.uid


async def create_config_map(
    kube: Kube, run: RunRef, body: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Create a ConfigMap `run` owns: the created object, or None when the run's own copy is
    there already (written before a crash); NameTakenError when another run's holds the name."""
    name = str(body["metadata"]["name"])
    for _ in range(3):
        try:
            return await kube.create(core_path("configmaps", run.namespace), body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        existing = await kube.get(core_path("configmaps", run.namespace, name))
        if existing is None:
            continue  # removed meanwhile: create it now
        if belongs_to(existing, run):
            return None
        other = (existing["metadata"].get("labels") or {}).get(RUN_UID, "unknown")
        raise NameTakenError(
            f"ConfigMap {name!r} belongs to another run (uid {other}), most likely a deleted run "
            "of the same name; the run starts once it is gone (delete it if it was orphaned)"
        )
    raise NameTakenError(f"ConfigMap {name!r} keeps reappearing; retrying later")
