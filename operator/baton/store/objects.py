"""Bodies of the objects Baton writes, built one way: the ConfigMaps a run owns (labelled with
the run and owned by it), and the Kubernetes Events about runs and pools."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from baton.api.labels import API_VERSION, RUN_UID, owned_labels
from baton.store.kube import ApiError, Kube, core_path
from baton.store.ref import RunRef


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


log = logging.getLogger(__name__)


def timestamp(seconds: float) -> str:
    """RFC 3339 in whole seconds, as Kubernetes writes Event and condition times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def post_event(
    kube: Kube,
    involved: Mapping[str, Any],
    kind: str,
    reason: str,
    message: str,
    *,
    now: float,
) -> None:
    """A Kubernetes Event about `involved` (kind, name, namespace, uid of one of Baton's
    objects). Best effort: a refused Event is logged, never raised."""
    namespace = str(involved["namespace"])
    stamp = timestamp(now)
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}.", "namespace": namespace},
        "involvedObject": {"apiVersion": API_VERSION, **involved},
        "type": kind,
        "reason": reason,
        "message": message,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "baton"},
    }
    try:
        await kube.create(core_path("events", namespace), body)
    except ApiError as exc:
        log.debug("event %s about %s not posted: %s", reason, involved["name"], exc)
