"""`baton crds`: print or write the CustomResourceDefinitions generated from the models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from baton.cli import CommandError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton crds`."""
    parser = subparsers.add_parser(
        "crds",
        help="print or write the CustomResourceDefinitions",
        description="Generate Baton's CustomResourceDefinitions from its models. Without "
        "--output they are printed as one multi-document YAML stream, ready for "
        "`kubectl apply -f -`.",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="DIR",
        help="write one file per kind, DIR/<plural>.baton.dev.yaml, instead of printing",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the CRDs, or write them under `args.output`."""
    from baton.api.crd import crd_files  # pydantic: not for `baton --help`

    files = crd_files()
    output: Path | None = args.output
    if output is None:
        sys.stdout.write("---\n".join(files.values()))
        return 0
    if output.exists() and not output.is_dir():
        raise CommandError(f"--output {output}: not a directory")
    output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (output / name).write_text(text, encoding="utf-8")
        print(f"wrote {output / name}", file=sys.stderr)
    return 0
