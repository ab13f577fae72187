"""Durations as users write them (`500ms`, `30s`, `5m`, `1h30m`, `7d`) and their parsing."""

from __future__ import annotations

import re
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
