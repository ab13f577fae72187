"""Continue-as-new: creating the run a run continues as, and following a lineage to its end.

`successor_manifest` (pure) is the WorkflowRun a `ContinueAsNew` command asks for. What it
inherits from the run it continues, and why:

- the same namespace, always, and the same Workflow: the predecessor's `workflowRef` (the new
  run snapshots that Workflow as it is now, as Temporal's continue-as-new picks up the latest
  code), or its inline `spec.workflow`. Nothing in the command names another, so a tenant can
  only continue into its own namespace and its own Workflow;
- the run-level settings a user gave the run (`onCancel`, `timeout` — per run, as Temporal's
  run timeout —, `parallelism`, `ttlAfterFinished`), not what steers one run (`signals`,
  `cancel`, `suspend`, `redrive`): signals not yet consumed stay with the run they were sent to;
- its labels and annotations (a Schedule's, a parent's `parent-uid` and `root-uid`, the step
  key and attempt of a child, the user's own), but not the phase label, nor kubectl's
  last-applied configuration (it describes the other run); its ownerReferences, so a child
  run's successor is still its parent's and a Schedule's run still the Schedule's;
- `spec.continuation`: the run it continues, the lineage's first run and its number, and the
  state `repeat.continueAsNewEvery` carries (vars, iteration counts); and the labels
  `baton.dev/lineage` and `baton.dev/continued-from`.

Idempotence: the name comes from the engine (the lineage, a hash of the predecessor's uid, the
number), so a re-issue after a crash finds the run the first issue created (409) and adopts it.
A run under that name that is not what the command asks for (it does not continue this run, or
follows another Workflow or input) is not ours: `SuccessorCreated` reports
`ContinueAsNewConflict` and the run fails instead of continuing.

A child run that continued as new has not ended for its parent: `latest` follows
`status.continuedAs` to the lineage's current run, which is whose end the parent waits for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baton.api.labels import API_VERSION, CONTINUED_FROM, LINEAGE, PHASE, label_value
from baton.api.run import RunPhase
from baton.engine.commands import ContinueAsNew
from baton.engine.events import SuccessorCreated
from baton.executors.base import Report
from baton.failpoints import failpoint
from baton.settings import OperatorSettings
from baton.store.kube import ApiError, Kube, path_of
from baton.store.ref import RunRef

INHERITED_SPEC = ("workflowRef", "workflow", "onCancel", "timeout", "parallelism")
"""Fields of the predecessor's spec the successor keeps (and `ttlAfterFinished`, below)."""
NOT_INHERITED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
MAX_LINEAGE_HOPS = 10_000
"""Runs `latest` follows at most: a lineage longer than this (its older runs not yet deleted by
their ttlAfterFinished) is followed from where the hops stopped on the next look."""


def successor_manifest(
    run: RunRef,
    body: Mapping[str, Any],
    command: ContinueAsNew,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The WorkflowRun `command` creates for `run` (whose object is `body`); pure."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != PHASE}
    labels.update(settings.created_labels)
    labels[LINEAGE] = label_value(command.lineage)
    labels[CONTINUED_FROM] = label_value(run.name)
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in NOT_INHERITED_ANNOTATIONS
    }
    metadata: dict[str, Any] = {"name": command.name, "namespace": run.namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    if meta.get("ownerReferences"):
        metadata["ownerReferences"] = list(meta["ownerReferences"])
    new_spec: dict[str, Any] = {k: spec[k] for k in INHERITED_SPEC if spec.get(k) is not None}
    if spec.get("ttlAfterFinished") is not None:
        new_spec["ttlAfterFinished"] = spec["ttlAfterFinished"]
    new_spec["input"] = command.input
    if command.cancel:
        new_spec["cancel"] = True
    new_spec["continuation"] = command.continuation(run.name)
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowRun",
        "metadata": metadata,
        "spec": new_spec,
    }


ADOPTED_MUST_MATCH = ("workflowRef", "input", "continuation")
"""What a run found under the successor's name must have as the successor would: it continues
this run, with the same Workflow and input (a run someone made under that name ahead of time
is not adopted, whatever it claims)."""


def continues(candidate: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    """True when `candidate` is the successor `manifest` describes (created by an earlier issue
    of the same command), not a namesake someone else made."""
    found, wanted = candidate.get("spec") or {}, manifest["spec"]
    return all(found.get(key) == wanted.get(key) for key in ADOPTED_MUST_MATCH)


class SuccessorCreator:
    """Performs `ContinueAsNew`: creates the successor or adopts the one a crashed issue
    created, then reports `SuccessorCreated`."""

    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings

    async def create(
        self, run: RunRef, body: Mapping[str, Any], command: ContinueAsNew, report: Report
    ) -> None:
        manifest = successor_manifest(run, body, command, self.settings)
        try:
            created = await self.kube.create(path_of("workflowruns", run.namespace), manifest)
        except ApiError as exc:
            if exc.status != 409:
                raise
            existing = await self.kube.get(path_of("workflowruns", run.namespace, command.name))
            if existing is None:
                raise
            created = existing
        failpoint("after-successor-create")
        if not continues(created, manifest):
            error = {
                "type": "ContinueAsNewConflict",
                "message": f"WorkflowRun {command.name} exists and does not continue this "
                "run, so the run could not continue as new; delete that run and start the "
                "lineage again",
            }
            await report(SuccessorCreated(command.name, error))
            return
        if command.cancel and not (created.get("spec") or {}).get("cancel"):
            # Created before the run was cancelled: the cancel goes on to it.
            await self.kube.patch(
                path_of("workflowruns", run.namespace, command.name), {"spec": {"cancel": True}}
            )
        await report(SuccessorCreated(command.name))


def continued(body: Mapping[str, Any]) -> str | None:
    """The run `body` continued as, when it ended ContinuedAsNew."""
    status = body.get("status") or {}
    if status.get("phase") != RunPhase.CONTINUED_AS_NEW.value:
        return None
    name = status.get("continuedAs")
    return str(name) if name else None


async def latest(kube: Kube, body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The current run of `body`'s lineage: `body` itself unless it continued as new, else the
    run it continued as, followed on. A successor that is gone stops the walk where it is."""
    current = body
    namespace = body["metadata"]["namespace"]
    for _ in range(MAX_LINEAGE_HOPS):
        name = continued(current)
        if name is None:
            return current
        found = await kube.get(path_of("workflowruns", namespace, name))
        if found is None:
            return current
        current = found
    return current
