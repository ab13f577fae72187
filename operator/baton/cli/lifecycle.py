"""The commands that end a run's life or start it over: delete, and resubmit (alias retry) —
a new run of the same workflow with the same input. (`baton redrive` restarts a failed run in
place, from the steps that failed.)

Arguments and offline checks only; the requests are `baton.cli.cluster`'s, imported when a
command runs (see `baton.cli.runs`).
"""

from __future__ import annotations

import argparse

from baton.cli.kubeconfig import add_cluster_arguments, target_of
from baton.cli.runs import (
    Subparsers,
    _add_wait_arguments,
    _check_wait_flags,
    _duration,
    _sync,
)


def register(subparsers: Subparsers) -> None:
    """Add delete and resubmit."""
    parser = subparsers.add_parser(
        "delete",
        help="delete runs (with their history, Jobs and owned child runs)",
        description="Delete each RUN. What a run owns (history and output ConfigMaps, its "
        "Jobs and their pods, child runs it terminates with it) is garbage-collected with it.",
    )
    parser.add_argument("runs", metavar="RUN", nargs="+")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_delete_handler)

    parser = subparsers.add_parser(
        "resubmit",
        aliases=["retry"],
        help="start a new run of a run's workflow with the same input",
        description="Create a new WorkflowRun with RUN's workflow (workflowRef or inline), "
        "input, timeout and onCancel, and print its name; RUN is left as it is. To restart a "
        "failed run in place from the steps that failed, use baton redrive.",
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument(
        "--name", metavar="NAME", help="the new run's name (default: WORKFLOW-xxxxx)"
    )
    _add_wait_arguments(parser, flag=True)
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_resubmit_handler)


def _delete_handler(args: argparse.Namespace) -> int:
    from baton.cli import cluster

    return _sync(cluster.delete(target_of(args), args.runs))


def _resubmit_handler(args: argparse.Namespace) -> int:
    _check_wait_flags(args)
    timeout = _duration(args.timeout, "--timeout")
    from baton.cli import cluster

    return _sync(
        cluster.resubmit(target_of(args), args.run, args.name, wait=args.wait, timeout=timeout)
    )
