"""Durations as users write them (`500ms`, `30s`, `5m`, `1h30m`, `7d`) and their parsing."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(DURATION_PATTERN)

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="A duration: numbers with units ms, s, m, h or d, like `90s` or `1h30m`.",
    ),
]


class DurationError(ValueError):
    """A duration string that does not parse."""


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises DurationError naming the accepted form."""
    if not _WHOLE.fullmatch(text):
        raise DurationError(
            f"malformed duration {text!r}: "
            "use numbers with units ms, s, m, h or d, like 30s or 1h30m"
        )
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))


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
