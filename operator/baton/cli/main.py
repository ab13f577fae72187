"""Entry point of `baton`: builds the parser from the subcommand modules and runs one.

Errors reach the user as one line on stderr and exit code 2, never as a traceback; set
BATON_DEBUG=1 to see the traceback of an unexpected one.

Start-up is kept short (`baton --help` and every shell completion pay it): this module and the
subcommand modules import only argparse-level modules at the top; pydantic, the engine (with
its CEL core) and the Kubernetes client are imported by the handler that needs them.
bench/cli_startup.py measures it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, Protocol, cast

from baton.cli import CommandError

PROG = "baton"
EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command killed by SIGPIPE (128 + 13)."""
SUBCOMMAND_MODULES = (
    "runs",
    "inspection",
    "lifecycle",
    "lint",
    "test",
    "crds",
    "ui",
    "operator",
    "dev",
    "completion",
)
"""Modules of baton.cli that add subcommands, in help order. Named, not discovered: importing
every module of the package would load the Kubernetes client for `baton --help`."""

Handler = Callable[[argparse.Namespace], int]


class Subcommand(Protocol):
    """A module of baton.cli that adds one subcommand."""

    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        """Add the subcommand's parser and set its `handler` default."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def subcommand_modules() -> list[Subcommand]:
    """The subcommand modules, imported."""
    return [
        cast(Subcommand, importlib.import_module(f"baton.cli.{name}"))
        for name in SUBCOMMAND_MODULES
    ]


def build_parser() -> argparse.ArgumentParser:
    """The `baton` parser with every subcommand registered."""
    parser = _Parser(
        prog=PROG,
        description="Durable workflows as Kubernetes resources.",
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version of baton and of its API, and exit"
    )
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        title="commands", metavar="COMMAND", parser_class=_Parser, required=True
    )
    for module in subcommand_modules():
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `baton` with `argv` (default: the process arguments); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = cast(Handler, args.handler)
    try:
        return handler(args)
    except CommandError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except BrokenPipeError:
        # The reader went away (`baton get -o name | head -1`): nothing to report, and nothing
        # may be written to stdout again, not even by the interpreter's flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if _is_resource_error(exc):
            return _fail(str(exc))
        if os.environ.get("BATON_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (BATON_DEBUG=1 shows the traceback)")


def _is_resource_error(exc: Exception) -> bool:
    """Whether `exc` is a ResourceError (a resource file that does not load), which is reported
    like a CommandError. Looked up, not imported: a ResourceError can only have been raised if
    its module (and pydantic with it) was loaded, and importing it here would slow every start."""
    resources = sys.modules.get("baton.api.resources")
    return resources is not None and isinstance(exc, resources.ResourceError)


class _Version(argparse.Action):
    """`--version`: reads the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from baton.api.labels import API_VERSION

        try:
            installed = version("baton")
        except PackageNotFoundError:
            installed = "(not installed)"
        print(f"{PROG} {installed} (API {API_VERSION})")
        parser.exit(0)


def _fail(message: str) -> int:
    for line in message.splitlines() or [""]:
        print(f"{PROG}: error: {line}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
