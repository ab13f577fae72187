"""`baton dev`: `make dev` from the command line, for a source checkout of Baton.

It runs the checkout's hack/dev.sh — the local control plane (built from source on first use),
the CRDs, the operator, the demo services, a worker and an example run — in the foreground, so
its output and exit code are the script's. Installed from a wheel there is no hack/ to run, and
the command says so.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from baton.cli import CommandError

CHECKOUT = Path(__file__).resolve().parents[3]
"""The source checkout this package runs from (operator/baton/cli/dev.py, three levels up)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton dev`."""
    parser = subparsers.add_parser(
        "dev",
        help="start (or stop) a local control plane, the operator and an example run",
        description="What `make dev` does: a real local control plane (etcd, kube-apiserver, "
        "controller-manager, scheduler, kwok), the CRDs, the operator, the demo services and "
        "an example run, all left running; `baton dev down` stops them. Needs a source "
        "checkout of Baton (it runs hack/dev.sh).",
    )
    parser.add_argument("action", nargs="?", choices=("up", "down"), default="up")
    parser.set_defaults(handler=run)


def script(checkout: Path = CHECKOUT) -> Path:
    """hack/dev.sh of `checkout`; CommandError when this is no source checkout."""
    path = checkout / "hack" / "dev.sh"
    if not path.is_file():
        raise CommandError(
            f"baton dev runs hack/dev.sh of a Baton source checkout, and {checkout} is not "
            "one: clone the repository and run `baton dev` (or `make dev`) there"
        )
    return path


def run(args: argparse.Namespace) -> int:
    """Replace this process with hack/dev.sh (its output, its signals, its exit code)."""
    path = script()
    os.execv(path, [str(path), args.action])
