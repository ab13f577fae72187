"""Errors an activity reports: typed results on the wire, not HTTP failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ActivityError(Exception):
    """Raise it from an activity to fail the attempt with an error type of your choosing.

    `type` is what a step's `retry.nonRetryableErrors` and `catch` match; `non_retryable=True`
    makes the failure final whatever the retry policy; `details` (JSON) are kept in the run's
    history. Any other exception an activity raises is reported with its class name as the type
    and is retryable.

        raise ActivityError("card declined", type="CardDeclined", non_retryable=True)
    """

    def __init__(
        self,
        message: str = "",
        *,
        type: str = "ActivityError",
        non_retryable: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.non_retryable = non_retryable
        self.details = dict(details or {})

    def to_wire(self) -> dict[str, Any]:
        """The `error` object of the worker protocol."""
        error: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "nonRetryable": self.non_retryable,
        }
        if self.details:
            error["details"] = self.details
        return error

    def __repr__(self) -> str:
        return (
            f"ActivityError({self.message!r}, type={self.type!r}, "
            f"non_retryable={self.non_retryable!r})"
        )


def error_of(exc: BaseException) -> dict[str, Any]:
    """The wire `error` of any exception: an ActivityError as it says, anything else as its
    class name, retryable."""
    if isinstance(exc, ActivityError):
        return exc.to_wire()
    return {"type": type(exc).__name__, "message": str(exc), "nonRetryable": False}
