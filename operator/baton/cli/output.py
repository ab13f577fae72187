"""How read commands print what they read, the way kubectl does: `-o json|yaml|wide|name`, and
colour on a terminal.

- `-o json` / `-o yaml`: the objects as the API server returned them (but for
  `metadata.managedFields`, which kubectl hides too), with `apiVersion` and `kind` filled in on
  listed items (the API server leaves them out of a list's items; kubectl
  puts them back), and a list wrapped as kubectl wraps it (`kind: List`). Commands whose result
  is not a Kubernetes object (history, describe, query) print their own data the same way.
- `-o wide`: the human view with more columns.
- `-o name`: `workflowrun.baton.dev/NAME`, one a line, as kubectl names custom resources, ready
  for `xargs` or `kubectl delete`.
- `--json` stays as a short form of `-o json`.

Colour: phases are coloured when stdout is a terminal, never when it is piped or `NO_COLOR` is
set to anything non-empty (no-color.org), or `TERM=dumb`. Pure but for reading the environment
in `colour_enabled`; yaml is imported only when `-o yaml` is asked for.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TextIO

from baton.api.labels import API_VERSION, GROUP


class Output(StrEnum):
    """The `-o` formats."""

    JSON = "json"
    YAML = "yaml"
    WIDE = "wide"
    NAME = "name"


DATA_FORMATS = (Output.JSON, Output.YAML)
"""Formats that print data rather than a view."""


def add_output_argument(
    parser: argparse.ArgumentParser, formats: Sequence[Output], *, what: str
) -> None:
    """`-o/--output FORMAT` (one of `formats`) and `--json`, its short form for `-o json`.

    `what` completes the help: "print the run(s) as ..."."""
    names = "|".join(f.value for f in formats)
    parser.add_argument(
        "-o",
        "--output",
        choices=[f.value for f in formats],
        metavar=names,
        help=f"print {what} as {names} instead of the view (as kubectl -o)",
    )
    parser.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const=Output.JSON.value,
        help="same as -o json",
    )


def output_of(args: argparse.Namespace) -> Output | None:
    """The `-o` format asked for; None for the default view."""
    value = getattr(args, "output", None)
    return None if value is None else Output(value)


def dump(value: Any, output: Output) -> str:
    """`value` as JSON (indented four spaces, as kubectl) or YAML (block style)."""
    if output is Output.YAML:
        import yaml

        # Keys sorted and long strings unwrapped, as kubectl's YAML has them.
        text = yaml.safe_dump(value, sort_keys=True, allow_unicode=True, width=1 << 30)
        return str(text).rstrip("\n")
    return json.dumps(value, indent=4, ensure_ascii=False)


def shown(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` without `metadata.managedFields`, which kubectl hides unless asked for."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or "managedFields" not in metadata:
        return dict(obj)
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}


def with_kind(item: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A listed object with its `apiVersion` and `kind`, first, as kubectl prints it."""
    return {"apiVersion": item.get("apiVersion", API_VERSION), "kind": kind, **shown(item)}


def as_list(items: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    """Listed objects as kubectl prints a list with `-o json|yaml`."""
    return {
        "apiVersion": "v1",
        "items": [with_kind(item, kind) for item in items],
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


def resource_name(obj: Mapping[str, Any], plural_kind: str = "workflowrun") -> str:
    """`workflowrun.baton.dev/NAME`: the name kubectl's `-o name` prints for a custom resource."""
    name = (obj.get("metadata") or {}).get("name", "")
    return f"{plural_kind}.{GROUP}/{name}"


# -- colour -----------------------------------------------------------------------------------


class Colour(StrEnum):
    """ANSI SGR codes of the colours used."""

    GREEN = "32"
    RED = "31"
    YELLOW = "33"
    CYAN = "36"
    DIM = "2"


PHASE_COLOURS: Mapping[str, Colour] = {
    "Succeeded": Colour.GREEN,
    "ContinuedAsNew": Colour.GREEN,
    "Failed": Colour.RED,
    "CompensationFailed": Colour.RED,
    "TimedOut": Colour.RED,
    "Cancelled": Colour.YELLOW,
    "Compensated": Colour.YELLOW,
    "Compensating": Colour.YELLOW,
    "Backoff": Colour.YELLOW,
    "Suspended": Colour.YELLOW,
    "Running": Colour.CYAN,
    "Waiting": Colour.CYAN,
    "Skipped": Colour.DIM,
}
"""Run and step phases by colour: green done well, red failed, yellow needs a look, cyan busy."""

Painter = Callable[[str], str]


def colour_enabled(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what goes to `stream`: a terminal, no `NO_COLOR`, not `TERM=dumb`."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def plain(text: str) -> str:
    """The painter that paints nothing."""
    return text


def paint(text: str, colour: Colour | None) -> str:
    """`text` in `colour` (unchanged for None)."""
    return f"\033[{colour.value}m{text}\033[0m" if colour is not None else text


def phase_painter(enabled: bool) -> Painter:
    """Colours a phase by `PHASE_COLOURS` when `enabled`; else leaves it as it is."""
    if not enabled:
        return plain
    return lambda phase: paint(phase, PHASE_COLOURS.get(phase))
