"""Workflow resources: compiled when applied, with a `Ready` or `Invalid` condition in status.

A definition that does not compile (an unknown `needs`, a cycle, a broken expression, a bad
inputSchema) is reported on the Workflow itself, with the step and field, before any run uses
it. Runs that were waiting for a missing or broken Workflow try again when it changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from baton.api.conditions import ConditionType, condition_is, set_condition
from baton.api.resources import first_problem
from baton.api.workflow import WorkflowSpec
from baton.engine import DefinitionError, compile_definition
from baton.store.kube import Kube, path_of

log = logging.getLogger("baton.workflows")


def validate(spec: Mapping[str, Any]) -> tuple[bool, str, str, int]:
    """(ready, reason, message, number of steps) for a Workflow spec."""
    try:
        definition = compile_definition(WorkflowSpec.model_validate(spec))
    except ValidationError as exc:
        message = f"spec.{first_problem(exc, WorkflowSpec)}"
        return False, "InvalidSpec", message, len(spec.get("steps") or [])
    except DefinitionError as exc:
        return False, "InvalidDefinition", str(exc), len(spec.get("steps") or [])
    return True, "Compiled", "the definition compiles", len(definition.index)


async def reconcile_workflow(kube: Kube, body: Mapping[str, Any]) -> bool:
    """Write the Workflow's condition when its spec changed; True when it is Ready."""
    meta = body["metadata"]
    status = body.get("status") or {}
    generation = meta.get("generation")
    if status.get("observedGeneration") == generation and status.get("conditions"):
        return _ready(status)
    ready, reason, message, steps = validate(body.get("spec") or {})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    previous = [c for c in status.get("conditions") or [] if c.get("type") != ConditionType.INVALID]
    conditions = set_condition(
        previous, ConditionType.READY, ready, reason, message, now=now,
        observed_generation=generation,
    )  # fmt: skip
    if not ready:
        conditions = set_condition(
            conditions, ConditionType.INVALID, True, reason, message, now=now,
            observed_generation=generation,
        )  # fmt: skip
        log.warning("workflow %s/%s is invalid: %s", meta["namespace"], meta["name"], message)
    new_status = {"observedGeneration": generation, "steps": steps, "conditions": conditions}
    path = path_of("workflows", meta["namespace"], meta["name"], subresource="status")
    await kube.patch(path, [{"op": "add", "path": "/status", "value": new_status}], kind="json")
    return ready


def _ready(status: Mapping[str, Any]) -> bool:
    return condition_is(status["conditions"], ConditionType.READY)
