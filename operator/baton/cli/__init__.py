"""The `baton` command (also the kubectl plugin `kubectl baton`).

Each subcommand lives in its own module of this package and defines
`register(subparsers) -> None`, which adds its parser and sets `handler` to a function taking
the parsed arguments and returning the exit code. `baton.cli.main` lists them by name.
"""

from __future__ import annotations


class CommandError(Exception):
    """A failure to report to the user as one line on stderr, with exit code 2."""
