"""Retry decisions: is an error retryable, and how long to back off before the next attempt.

Pure functions of the policy, the error and the attempt number. Jitter is derived from a hash of
(run uid, activity key, attempt), so a replay computes the same delay as the first run did and
two runs retrying the same failing service still spread out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

from baton.api.duration import MAX_DURATION_SECONDS
from baton.engine.definition import RetryPolicy
from baton.engine.errors import StepError

# Error types the engine itself raises that no retry can fix: a broken expression stays broken,
# and the caps (maxIterations, scheduleToClose) are final by definition.
NON_RETRYABLE_BUILTIN: frozenset[str] = frozenset({"ExpressionError", "MaxIterations"})


def is_retryable(policy: RetryPolicy, error: StepError) -> bool:
    """True when another attempt could succeed after `error` (ignoring the attempt budget).

    `HttpError` with a 4xx status is a client mistake that repeating will not fix, except 408
    (Request Timeout) and 429 (Too Many Requests), which are invitations to come back later.
    An error whose `details.nonRetryable` is true is final whatever the policy says.
    """
    error_type = error.type
    if error_type in policy.non_retryable_errors or error_type in NON_RETRYABLE_BUILTIN:
        return False
    details = error.details
    if isinstance(details, Mapping) and details.get("nonRetryable") is True:
        # The activity itself said so (a worker's non-retryable exception, a refused address).
        return False
    if error_type == "Timeout" and isinstance(details, Mapping):
        # A scheduleToClose timeout is the budget across attempts running out.
        return details.get("kind") != "scheduleToClose"
    if error_type == "HttpError" and isinstance(details, Mapping):
        status = details.get("status")
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
            return False
    return True


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    *,
    seed: str,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based within the budget).

    The computed delay is `initialInterval * backoffCoefficient ** (attempt - 1)`, capped at
    `maxInterval`, then spread by `jitter` (a fraction either side) and capped again, so a
    delay never exceeds `maxInterval`. A `Retry-After` hint from the failed attempt replaces the
    computed delay and is not capped by `maxInterval`: the server said when it can serve again,
    and retrying earlier would only spend an attempt on another refusal. `scheduleToClose`
    still bounds it (checked by the caller).
    """
    if retry_after is not None:
        # A server's hint is not the workflow's word: it must still be a time a run can keep.
        if not math.isfinite(retry_after):
            return MAX_DURATION_SECONDS if retry_after > 0 else 0.0
        return min(max(0.0, retry_after), MAX_DURATION_SECONDS)
    exponent = max(0, attempt - 1)
    # Cap the exponent's effect before computing it: a large attempt number must not overflow.
    delay = policy.initial_interval
    for _ in range(exponent):
        delay *= policy.backoff_coefficient
        if delay >= policy.max_interval:
            break
    delay = min(delay, policy.max_interval)
    if policy.jitter > 0:
        delay *= 1.0 + policy.jitter * (2.0 * unit_fraction(seed) - 1.0)
        delay = min(delay, policy.max_interval)
    return min(max(0.0, delay), MAX_DURATION_SECONDS)


def unit_fraction(seed: str) -> float:
    """A number in [0, 1) derived from `seed` alone."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64
