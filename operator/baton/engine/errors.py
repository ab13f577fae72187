"""`StepError`: the error of a step, a compensation or the run, typed inside the engine.

Its JSON form (`{type, message, step?, details?}`, the API's ErrorInfo) is what statuses,
histories, FinishRun and expressions (`error` in a catch clause) see; `to_json`/`from_json`
convert at those boundaries, so the stored format is the same as before the type existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepError:
    """What went wrong: a `type` catch clauses and retry policies match, a human `message`,
    the step it happened in (None for the run's own errors) and JSON `details`."""

    type: str
    message: str
    details: Any = None
    step: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ErrorInfo object; `step` and `details` only when set."""
        out: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.step is not None:
            out["step"] = self.step
        if self.details is not None:
            out["details"] = self.details
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> StepError:
        """Inverse of `to_json` (a status written by the engine)."""
        return StepError(
            type=str(data.get("type") or "Error"),
            message=str(data.get("message") or ""),
            details=data.get("details"),
            step=data.get("step"),
        )

    @staticmethod
    def reported(error: dict[str, Any], step: str) -> StepError:
        """An activity's or child's error as reported to the engine (any JSON object), as the
        error of `step`: a type and a message at least, other fields dropped."""
        return StepError(
            type=str(error.get("type") or "Error"),
            message=str(error.get("message") or ""),
            details=error.get("details"),
            step=step,
        )


def error_json(error: StepError | None) -> dict[str, Any] | None:
    """`error.to_json()`, or None."""
    return error.to_json() if error is not None else None
