"""The Kubernetes API client the operator's shell and the CLI share (kubernetes_asyncio)."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes_asyncio import client, config

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


async def connect(kubeconfig: str | None = None) -> client.ApiClient:
    """An API client from `kubeconfig`, $KUBECONFIG, ~/.kube/config or the in-cluster account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path is None and not Path("~/.kube/config").expanduser().exists():
        if IN_CLUSTER_TOKEN.exists():
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        raise ConnectionError(
            "no kubeconfig: set KUBECONFIG, pass --kubeconfig, or run inside a cluster"
        )
    configuration = client.Configuration()
    await config.load_kube_config(config_file=path, client_configuration=configuration)
    return client.ApiClient(configuration)
