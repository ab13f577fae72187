"""What runs and pools may ask of the pods Baton creates: the operator's policy on
ServiceAccounts and pod annotations (pure).

Whoever can create a WorkflowRun or a WorkerPool is not the cluster admin, yet a Job step's pod
runs with the `serviceAccountName` the step names (and that account's API rights) and with the
annotations it sets (which steer service meshes, admission webhooks, backup and cost tools), and
a pool's workers run with the account the pool names. So these are refused unless the operator
allows them: `OperatorSettings.pod_service_accounts` (Job steps and WorkerPools) and
`job_pod_annotations`, shell-style patterns (`ci-*`, `sidecar.istio.io/*`), empty by default.

Where it is checked, so what asks for too much fails early and clearly:
- when a run starts, every Job action of its definition (steps, nested ones, compensations)
  whose values are written out: a violation keeps the run from starting at all (`Invalid`,
  reason `PolicyDenied`), before any step has had an effect;
- at each attempt, on the rendered action, for values only an expression gives
  (`serviceAccountName: ${{ input.account }}`): the attempt fails with a non-retryable
  `PolicyDenied` error, no Job is created, and the run fails as for any other step error;
- at each reconciliation of a WorkerPool (baton.handlers.pools): a refused account leaves the
  pool without Deployment and tasks, its Ready condition `PolicyDenied`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from baton.engine import Definition
from baton.engine.definition import Action, StepKind
from baton.settings import OperatorSettings

POLICY_DENIED = "PolicyDenied"
"""Error type of an attempt, and reason of a run's Invalid condition, the policy refused."""


class PodField(StrEnum):
    """The fields of a Job action the policy governs, spelt as in YAML."""

    SERVICE_ACCOUNT = "serviceAccountName"
    ANNOTATIONS = "podAnnotations"

    @property
    def allowed_by(self) -> str:
        """The chart value and the `baton operator` flag that allow more of this field."""
        if self is PodField.SERVICE_ACCOUNT:
            return (
                "the chart value operator.podPolicy.serviceAccounts "
                "(baton operator --allow-service-account)"
            )
        return (
            "the chart value operator.podPolicy.jobAnnotations "
            "(baton operator --allow-job-pod-annotation)"
        )

    def patterns(self, settings: OperatorSettings) -> tuple[str, ...]:
        """The patterns the operator allows for this field."""
        if self is PodField.SERVICE_ACCOUNT:
            return settings.pod_service_accounts
        return settings.job_pod_annotations


@dataclass(frozen=True)
class Violation:
    """A value of `field` the policy does not allow."""

    field: PodField
    value: str
    allowed: tuple[str, ...]

    @property
    def message(self) -> str:
        """One line naming the field, the value, what is allowed and where to change it."""
        what = "annotation key" if self.field is PodField.ANNOTATIONS else "ServiceAccount"
        allowed = ", ".join(repr(p) for p in self.allowed) if self.allowed else "none"
        return (
            f"{what} {self.value!r} is not allowed by the operator's pod policy "
            f"(allowed: {allowed}); remove it, or ask the cluster admin to allow it with "
            f"{self.field.allowed_by}"
        )


def allows(patterns: tuple[str, ...], value: str) -> bool:
    """True when `value` matches one of `patterns` (shell-style: `*`, `?`, `[...]`; case
    matters, as in Kubernetes names)."""
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def violations(spec: Mapping[str, Any], settings: OperatorSettings) -> list[Violation]:
    """What the rendered Job action `spec` (camelCase) asks that the policy refuses."""
    found = []
    account = spec.get(PodField.SERVICE_ACCOUNT)
    if account:
        found.extend(_check(PodField.SERVICE_ACCOUNT, str(account), settings))
    for key in spec.get(PodField.ANNOTATIONS) or {}:
        found.extend(_check(PodField.ANNOTATIONS, str(key), settings))
    return found


def definition_violations(
    definition: Definition, settings: OperatorSettings
) -> Iterator[tuple[str, str, Violation]]:
    """(step, field path, violation) for every value written out in a Job action of
    `definition` that the policy refuses; values an expression gives are left to the attempt."""
    for step in definition.index.values():
        actions: list[tuple[str, Action]] = []
        if step.action is not None and step.kind is StepKind.JOB:
            actions.append(("job", step.action))
        if step.compensate is not None and step.compensate.action.kind is StepKind.JOB:
            actions.append(("compensate.job", step.compensate.action))
        for base, action in actions:
            fields = dict(action.fields)
            account = fields.get(PodField.SERVICE_ACCOUNT)
            if account is not None and account.is_constant and account.tree:
                for violation in _check(PodField.SERVICE_ACCOUNT, str(account.tree), settings):
                    yield step.name, f"{base}.{PodField.SERVICE_ACCOUNT}", violation
            annotations = fields.get(PodField.ANNOTATIONS)
            # Keys are never interpolated: they are all known now, whatever the values.
            if annotations is not None and isinstance(annotations.tree, dict):
                for key in annotations.tree:
                    for violation in _check(PodField.ANNOTATIONS, str(key), settings):
                        yield step.name, f"{base}.{PodField.ANNOTATIONS}", violation


def refused(field: PodField, value: str, patterns: tuple[str, ...]) -> Violation | None:
    """The violation of `value` for `field` under `patterns`; None when they allow it."""
    return None if allows(patterns, value) else Violation(field, value, patterns)


def _check(field: PodField, value: str, settings: OperatorSettings) -> list[Violation]:
    found = refused(field, value, field.patterns(settings))
    return [] if found is None else [found]
