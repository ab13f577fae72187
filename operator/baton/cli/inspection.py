"""The commands that look into one run more closely than `baton get`: describe (its steps as a
tree), logs (a Job step's pod log) and query (its published queries).

Arguments and offline checks only; the requests are `baton.cli.cluster`'s, imported when a
command runs (see `baton.cli.runs`).
"""

from __future__ import annotations

import argparse

from baton.cli import CommandError
from baton.cli.kubeconfig import add_cluster_arguments, target_of
from baton.cli.output import Output, add_output_argument, output_of
from baton.cli.runs import Subparsers, _sync


def register(subparsers: Subparsers) -> None:
    """Add describe, logs and query."""
    parser = subparsers.add_parser(
        "describe",
        help="show a run's steps as a tree: phases, attempts, durations, errors, child runs",
        description="Show RUN's steps nested as its definition nests them (parallel branches, "
        "forEach items, catch steps, the child run of a workflow step), each with its phase, "
        "attempts, duration and last error.",
    )
    parser.add_argument("run", metavar="RUN")
    add_output_argument(parser, [Output.JSON, Output.YAML, Output.WIDE], what="the tree")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_describe_handler)

    parser = subparsers.add_parser(
        "logs",
        help="print the log of a Job step's pod (the latest attempt, or --attempt N)",
        description="Print the log of the pod that ran STEP of RUN (default: the newest Job "
        "pod of the run). STEP is a step key (pay, items[3].charge) or a step name that ran "
        "once. Pods stay until their Job is deleted, so earlier attempts can be read too.",
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("step", metavar="STEP", nargs="?")
    parser.add_argument(
        "--attempt", type=int, metavar="N", help="the pod of attempt N (default: the latest)"
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing as the pod writes"
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_logs_handler)

    parser = subparsers.add_parser(
        "query",
        help="print a run's queries (status.queries), or the value of one",
        description="Without NAME: every query the Workflow publishes, with its value after "
        "the run's last transition. With NAME: that value alone, as JSON (or -o yaml).",
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("name", metavar="NAME", nargs="?")
    add_output_argument(parser, [Output.JSON, Output.YAML], what="the queries")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_query_handler)


def _describe_handler(args: argparse.Namespace) -> int:
    from baton.cli import cluster

    return _sync(cluster.describe(target_of(args), args.run, output_of(args)))


def _logs_handler(args: argparse.Namespace) -> int:
    if args.attempt is not None and args.attempt < 1:
        raise CommandError("--attempt: attempts count from 1")
    from baton.cli import cluster

    return _sync(
        cluster.logs(target_of(args), args.run, args.step, args.attempt, follow=args.follow)
    )


def _query_handler(args: argparse.Namespace) -> int:
    from baton.cli import cluster

    return _sync(cluster.query(target_of(args), args.run, args.name, output_of(args)))
