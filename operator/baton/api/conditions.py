"""Conditions in the Kubernetes convention, and the one function that sets them.

Every Baton resource reports in `status.conditions`: a list keyed by `type` (a list-map in the
CRD, so the API server refuses two entries of one type), each entry with `status` (True, False
or Unknown), a CamelCase `reason`, a `message`, `lastTransitionTime` (moved only when the status
changes) and, where the writer knows it, `observedGeneration`. `kubectl wait
--for=condition=<type>` reads them. `set_condition` is how anything in Baton adds or changes
one, so those rules hold everywhere.

A run's outcome is told by two conditions (`baton.api.run.run_outcome`), named as the tools
users come from name them: `Succeeded` (Tekton's) and `Completed` (Argo's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field
from pydantic.config import JsonDict

from baton.api.workflow import Model


class ConditionStatus(StrEnum):
    """A condition's `status`."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """The condition types Baton writes."""

    READY = "Ready"
    """Workflows: runs may start from the definition. WorkerPools: workers can take tasks."""
    INVALID = "Invalid"
    """The resource was refused; the message says why and what to change."""
    SUCCEEDED = "Succeeded"
    """Runs: True when the run Succeeded, False when it ended otherwise, Unknown before."""
    COMPLETED = "Completed"
    """Runs: True once the run ended, whatever the outcome."""


CONDITIONS_LIST_MAP: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}
"""The CRD markers of a `conditions` list: entries keyed by type, as in Kubernetes' own kinds."""


class Condition(Model):
    """A condition in the Kubernetes convention."""

    type: str = Field(description="Condition type, for example Ready, Succeeded or Invalid.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason.")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str | None = Field(
        None,
        alias="lastTransitionTime",
        description="RFC 3339 time the status last changed.",
    )
    observed_generation: int | None = Field(
        None,
        alias="observedGeneration",
        description="The metadata.generation of the object when the condition was set.",
    )


def set_condition(
    conditions: Iterable[Mapping[str, Any]],
    kind: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    *,
    now: str,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """`conditions` with the condition `kind` set: replaced in place when present, appended
    otherwise. Its `lastTransitionTime` is `now` when the status changes, and stays what it was
    when only the reason or message does (Kubernetes' rule: it dates the transition)."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    entry: dict[str, Any] = {
        "type": kind,
        "status": status.value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }
    if observed_generation is not None:
        entry["observedGeneration"] = observed_generation
    result: list[dict[str, Any]] = []
    placed = False
    for existing in conditions:
        if existing.get("type") != kind:
            result.append(dict(existing))
            continue
        if placed:
            continue  # a duplicate written before conditions were keyed by type
        if existing.get("status") == entry["status"] and existing.get("lastTransitionTime"):
            entry["lastTransitionTime"] = existing["lastTransitionTime"]
        result.append(entry)
        placed = True
    if not placed:
        result.append(entry)
    return result


def condition_is(conditions: Iterable[Mapping[str, Any]], kind: str) -> bool:
    """True when the condition `kind` is present with status True."""
    return any(
        c.get("type") == kind and c.get("status") == ConditionStatus.TRUE.value for c in conditions
    )
