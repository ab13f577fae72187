"""The flags that say which cluster and namespace a command addresses, as kubectl's do.

`--kubeconfig`, `--context`, `-n/--namespace`; how they are resolved (kubeconfig files,
contexts, the context's namespace, the in-cluster account) is `baton.store.kubeconfig` and
`baton.store.kube.open_connection`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every cluster command takes: -n/--namespace, --kubeconfig, --context."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "-n",
        "--namespace",
        metavar="NAMESPACE",
        help="namespace of the run (default: the kubeconfig context's namespace, else default)",
    )
    group.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    group.add_argument("--context", metavar="NAME", help="kubeconfig context to use")


@dataclass(frozen=True)
class Target:
    """Where a command goes: the kubeconfig files (None inside a cluster), context, namespace."""

    kubeconfig: str | None
    context: str | None
    namespace: str | None


def target_of(args: argparse.Namespace) -> Target:
    """The `Target` the common flags of `args` ask for."""
    return Target(
        kubeconfig=getattr(args, "kubeconfig", None),
        context=getattr(args, "context", None),
        namespace=getattr(args, "namespace", None),
    )
