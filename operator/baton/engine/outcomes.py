"""Failure control: what a finished step means to the steps around it.

This module owns the answers the core asks when it drives a list of steps, a race or a forEach:
whether a step counts as *done* for the steps that need it, whether its failure stops its list
(*fatal*) or is handled (`continueOn.failed`, a sibling's `depends` naming `<step>.Failed`),
whether a pending step may start, must be skipped or waits (`needs` and `depends`, evaluated
three-valued), and the outputs and errors of a race and of a forEach that tolerates failures.
Everything here is a pure function of the definition and the state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from baton.api.run import StepPhase
from baton.engine.definition import ForEach, StepDef
from baton.engine.depends import Outcome, Ref
from baton.engine.errors import StepError, error_json
from baton.engine.state import StepState

FINISHED = frozenset(
    {StepPhase.SUCCEEDED, StepPhase.SKIPPED, StepPhase.FAILED, StepPhase.CANCELLED}
)

TOLERATED_FAILURE_EXCEEDED = "ToleratedFailureExceeded"
"""Error type of a forEach with more failed items than it tolerates."""


def is_done(sd: StepDef, step: StepState) -> bool:
    """True when `step` lets the steps that need it start: Succeeded, Skipped, or Failed with
    `continueOn.failed`."""
    phase = step.phase
    return (
        phase is StepPhase.SUCCEEDED
        or phase is StepPhase.SKIPPED
        or (phase is StepPhase.FAILED and sd.continue_on_failed)
    )


def is_fatal(sd: StepDef, step: StepState) -> bool:
    """True when `step` ended in a way that fails its list: Cancelled, or Failed without its
    failure being handled."""
    phase = running_outcome(step)
    return phase is StepPhase.CANCELLED or (phase is StepPhase.FAILED and not sd.failure_handled)


def running_outcome(step: StepState) -> StepPhase:
    """The phase `step` counts by: the outcome it ended in while its `finally` runs (it shows
    Running then), else its phase (which a finished `finally` may have turned to Failed)."""
    if step.outcome is not None and step.phase not in FINISHED:
        return step.outcome
    return step.phase


def is_settled(sd: StepDef, step: StepState) -> bool:
    """True when `step` ended in a way its list can succeed with: done, or a handled failure."""
    return is_done(sd, step) or (step.phase is StepPhase.FAILED and sd.failure_handled)


def readiness(
    sd: StepDef,
    prefix: str,
    steps: Mapping[str, StepState],
    index: Mapping[str, StepDef],
) -> bool | None:
    """Whether the pending step `sd` (of the list whose instances are prefixed `prefix`) may
    start: True, False (it never can: skip it) or None (not yet).

    Without `depends`, every step it waits for must be done; one that ended otherwise makes it
    False. With `depends`, the expression decides, an unfinished step's outcome being unknown.
    """
    if sd.depends is None:
        waiting = False
        for name in sd.after:
            dep = steps.get(prefix + name)
            if dep is None or dep.phase not in FINISHED:
                waiting = True
            elif not is_done(index[name], dep):
                return False
        return None if waiting else True

    def resolve(ref: Ref) -> bool | None:
        dep = steps.get(prefix + ref.step)
        if dep is None or dep.phase not in FINISHED:
            return None
        if ref.outcome is Outcome.DONE:
            return is_done(index[ref.step], dep)
        return dep.phase.value == ref.outcome.value

    return sd.depends.evaluate(resolve)


def race_output(winner: str, output: Any) -> dict[str, Any]:
    """The output of a race: which branch won, and its last step's output."""
    return {"winner": winner, "output": output}


def failed_items(inner: StepDef, items: Sequence[StepState | None]) -> list[int]:
    """Indices of the items that count against a forEach's tolerance: Failed, and not by a
    step with `continueOn.failed`."""
    if inner.continue_on_failed:
        return []
    return [i for i, x in enumerate(items) if x is not None and x.phase is StepPhase.FAILED]


def tolerance_error(each: ForEach, name: str, failed: list[int], total: int) -> StepError:
    """The error of a forEach whose failed items passed what it tolerates."""
    limits = []
    if each.tolerated_failure_count is not None:
        limits.append(f"{each.tolerated_failure_count} items")
    if each.tolerated_failure_percentage is not None:
        limits.append(f"{each.tolerated_failure_percentage:g}% of {total} items")
    return StepError(
        type=TOLERATED_FAILURE_EXCEEDED,
        message=f"{len(failed)} of {total} items failed, more than the "
        f"{' or '.join(limits)} tolerated",
        step=name,
        details={
            "failed": failed,
            "total": total,
            "toleratedFailureCount": each.tolerated_failure_count,
            "toleratedFailurePercentage": each.tolerated_failure_percentage,
        },
    )


def tolerant_output(items: Sequence[StepState | None], failed: list[int]) -> dict[str, Any]:
    """The output of a forEach that tolerates failures: every item's output (null for failed
    and skipped ones) and the failed items with their errors."""
    return {
        "items": [
            x.output if x is not None and x.phase is StepPhase.SUCCEEDED else None for x in items
        ],
        "failed": [{"index": i, "error": _error(items[i])} for i in failed],
    }


def _error(item: StepState | None) -> Any:
    return error_json(item.error) if item is not None else None
