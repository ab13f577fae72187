"""Bodies of the objects a run owns, built one way: labelled with the run and owned by it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baton.api.labels import owned_labels
from baton.executors.base import RunRef


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
