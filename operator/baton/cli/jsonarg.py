"""JSON values given on the command line, inline or as `@file` (`--input`, `--payload`).

Shared by `baton test`, `baton run` and `baton signal`, so every command accepts and refuses
the same forms with the same one-line messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from baton.cli import CommandError


def read_text(path: Path) -> str:
    """The text of `path`; a missing or unreadable file is a one-line CommandError."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None


def json_argument(value: str, flag: str) -> Any:
    """The JSON value of `flag`'s `value`: inline JSON, or `@path` for the contents of a file.

    The error names where the bad JSON came from (the flag, or the file) and where in it."""
    source = flag
    if value.startswith("@"):
        source = value[1:]
        value = read_text(Path(source))
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
