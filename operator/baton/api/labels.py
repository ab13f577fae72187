"""Labels, annotations and names Baton puts on the objects it creates.

Everything a run owns (history and output ConfigMaps, the definition snapshot, Jobs, child runs)
carries the run's uid as a label, so it can be found with one label selector and routed back to
the run, and an ownerReference, so deleting the run garbage-collects it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

GROUP = "baton.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

RUN_UID = "baton.dev/run-uid"
"""Label: uid of the WorkflowRun that owns the object."""
RUN_NAME = "baton.dev/run"
"""Label: name of the WorkflowRun that owns the object."""
PART = "baton.dev/part"
"""Label: what the object is to its run: history, output, definition, job or child."""
STEP = "baton.dev/step"
"""Label: the step an activity object belongs to (sanitised)."""
ACTIVITY_KEY = "baton.dev/activity-key"
"""Annotation: the engine's exact activity key (`pay`, `items[3].charge`, `pay/compensate`)."""
ATTEMPT = "baton.dev/attempt"
"""Annotation: the attempt number of the activity object."""
PARENT_UID = "baton.dev/parent-uid"
"""Label on a child WorkflowRun: uid of its parent run."""
SHARD = "baton.dev/shard"
"""Label: the shard an object belongs to. `baton operator --shard NAME` handles only runs and
pools labelled NAME (and labels what it creates so); without --shard, only those without it."""
ROOT_UID = "baton.dev/root-uid"
"""Label on a child WorkflowRun: uid of the run at the top of its tree (a run without a parent
is its own root). Worker pools share their slots fairly between roots, not between runs."""

RESUBMITTED_FROM = "baton.dev/resubmitted-from"
"""Annotation on a run `baton resubmit` created: the name of the run it repeats."""
WORKFLOW = "baton.dev/workflow"
"""Label on a WorkflowRun: the Workflow it runs (absent for an inline definition), set by the
operator so `kubectl get workflowruns -l baton.dev/workflow=NAME` finds a workflow's runs."""
PHASE = "baton.dev/phase"
"""Label on a WorkflowRun: its phase, kept equal to `status.phase` by the operator (written when
the phase changes, never per step), for `kubectl get workflowruns -l baton.dev/phase=Failed`."""

SCHEDULE = "baton.dev/schedule"
"""Label on a WorkflowRun a Schedule started: the Schedule's name
(`kubectl get workflowruns -l baton.dev/schedule=nightly`)."""
SCHEDULED_TIME = "baton.dev/scheduled-time"
"""Annotation on a WorkflowRun a Schedule started: its nominal time (RFC 3339, UTC), which the
run reads as `run.scheduledTime`."""
_SCHEDULED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

LINEAGE = "baton.dev/lineage"
"""Label on every run of a continue-as-new lineage: the first run's name, as a label value
(`kubectl get workflowruns -l baton.dev/lineage=ticker` lists every generation)."""
CONTINUED_FROM = "baton.dev/continued-from"
"""Label on a run continue-as-new started: the name of the run it continues."""
LOCK_KIND = "baton.dev/lock-kind"
"""Label of the ConfigMap holding a mutex or semaphore (baton.store.locks): `mutex` or
`semaphore`; its `baton.dev/part` is `lock`."""

WORKFLOW_SECRET = "baton.dev/workflow-secret"
"""Label a Secret's owner sets to `true` to let workflow runs of its namespace use it (HTTP
headers, Job env vars). Without it the operator refuses to read it for a run."""


def label_value(text: str) -> str:
    """`text` made into a valid label value (at most 63 characters, alphanumeric ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return value.strip("-_.")


def owned_labels(
    run_uid: str, run_name: str, part: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The labels of an object a run owns: `extra` (the operator's own), then the run's uid and
    name and what the object is to it (`part`)."""
    return {**(extra or {}), RUN_UID: run_uid, RUN_NAME: label_value(run_name), PART: part}


def run_labels(workflow: str | None, phase: str) -> dict[str, str | None]:
    """The labels the operator keeps on a run: its Workflow (None removes the label: an inline
    definition has none) and its phase."""
    return {WORKFLOW: label_value(workflow) if workflow else None, PHASE: phase}


def scheduled_time(body: Mapping[str, object]) -> str | None:
    """The nominal time a run's annotation gives (`run.scheduledTime`), when it is one
    (`2026-12-02T11:30:00Z`); anything else written there is not a time and gives None."""
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(SCHEDULED_TIME) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) and _SCHEDULED_TIME.fullmatch(value) else None
