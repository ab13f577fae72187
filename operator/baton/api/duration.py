"""Durations as users write them (`500ms`, `30s`, `5m`, `1h30m`, `7d`), RFC 3339 timestamps
(`sleep.until`), and their parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
MAX_DURATION_LENGTH = 32
"""Longest duration string (`1h30m15s500ms` is 13): 400 nines are refused by the API server."""
MAX_DURATION_DAYS = 36_500
"""Longest duration, about 100 years. Every due time a run keeps must be a date its status can
write (RFC 3339 ends at year 9999); a sleep of 99999999d would be 273,000 years."""
MAX_DURATION_SECONDS = MAX_DURATION_DAYS * 86_400.0
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(DURATION_PATTERN)


class DurationError(ValueError):
    """A duration string that does not parse, or is longer than MAX_DURATION_DAYS."""


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises DurationError naming the accepted form or the limit."""
    if len(text) > MAX_DURATION_LENGTH or not _WHOLE.fullmatch(text):
        raise DurationError(
            f"malformed duration {text[:40]!r}: use numbers with units ms, s, m, h or d, like "
            f"30s or 1h30m, in at most {MAX_DURATION_LENGTH} characters"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    if seconds > MAX_DURATION_SECONDS:
        raise DurationError(
            f"duration {text!r} is longer than the {MAX_DURATION_DAYS}d (about 100 years) "
            "Baton accepts"
        )
    return seconds


def _valid_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=MAX_DURATION_LENGTH,
        description="A duration: numbers with units ms, s, m, h or d, like `90s` or `1h30m`; "
        f"at most {MAX_DURATION_DAYS}d.",
    ),
    AfterValidator(_valid_duration),
]


LATEST_TIMESTAMP = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The last time RFC 3339 (four-digit years) and so a run's status can write."""
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class TimestampError(ValueError):
    """A string that is not an RFC 3339 timestamp with a time zone."""


def parse_timestamp(text: str) -> datetime:
    """The instant `text` names; raises TimestampError naming the accepted form.

    RFC 3339 only, with its time zone (`Z` or an offset): a time without a zone means a
    different instant on every machine, which a durable timer must not."""
    if len(text) > 64 or not _TIMESTAMP.fullmatch(text):
        raise TimestampError(
            f"malformed timestamp {text[:40]!r}: use RFC 3339 with a time zone, like "
            "2026-01-02T15:04:05Z or 2026-01-02T16:04:05+01:00"
        )
    try:
        # fromisoformat reads at most microseconds: finer fractions are cut, not refused.
        head, dot, rest = text.partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T")).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise TimestampError(f"timestamp {text[:40]!r} names no date: {exc}") from None


def format_duration(seconds: float) -> str:
    """The shortest readable form of `seconds`, inverse of parse_duration for whole units."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
