"""`baton ui`: serve the web view of workflows, runs and worker pools.

Arguments and offline checks only; the server is `baton.ui.server`, imported when the command
runs (Starlette and the Kubernetes client take a while to import).

By default it listens on 127.0.0.1 and acts as the user of the kubeconfig (`--kubeconfig`,
`--context`, as every command): nothing is installed in the cluster and the page shows what
that user may see. `--auth token` is the in-cluster mode of the chart: each request acts with
the caller's own bearer token, and a request without one is refused.
"""

from __future__ import annotations

import argparse

from baton.cli import CommandError
from baton.cli.kubeconfig import add_cluster_arguments, target_of

DEFAULT_PORT = 8980
LOOPBACK = "127.0.0.1"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton ui`."""
    parser = subparsers.add_parser(
        "ui",
        help="serve the web view of runs, workflows and worker pools on 127.0.0.1",
        description="Serve the web view on http://127.0.0.1:PORT: runs live across namespaces, "
        "each run's graph, timeline, steps, history and actions, workflows and worker pools. "
        "It acts with your kubeconfig's rights, like every baton command; when you may not "
        "list runs in all namespaces it shows those of --namespaces (default: the context's "
        "namespace, or -n).",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument(
        "--auth",
        choices=("kubeconfig", "token"),
        default="kubeconfig",
        help="kubeconfig: act as the kubeconfig's user (default); token: act with each "
        "caller's bearer token, refusing requests without one (the chart's deployment)",
    )
    parser.add_argument(
        "--address",
        default=LOOPBACK,
        help="address to listen on (default 127.0.0.1; only with --auth token may it be "
        "another: a kubeconfig's rights are never offered to the network)",
    )
    parser.add_argument(
        "--namespaces",
        metavar="NS[,NS...]",
        default="",
        help="namespaces to show to a user who may not list runs in all of them (default: "
        "the context's namespace)",
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port: {args.port} is not a port (0-65535)")
    if args.auth == "kubeconfig" and args.address != LOOPBACK:
        raise CommandError(
            "--address: with --auth kubeconfig the view listens on 127.0.0.1 only; anyone "
            "reaching it would act with your kubeconfig's rights (use --auth token to serve "
            "other machines)"
        )
    namespaces = [ns.strip() for ns in args.namespaces.split(",") if ns.strip()]
    from baton.ui.serve import serve

    return serve(
        target_of(args), args.auth, args.address, args.port, namespaces, open_browser=args.open
    )
