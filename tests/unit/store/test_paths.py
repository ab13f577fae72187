"""API paths are built in one place, which refuses any name that could leave its namespace."""

from __future__ import annotations

import pytest

from baton.api.names import InvalidNameError
from baton.store.kube import core_path, path_of


def test_a_path_names_the_namespace_kind_and_object() -> None:
    assert core_path("secrets", "shop", "db-token") == "/api/v1/namespaces/shop/secrets/db-token"
    assert (
        path_of("workflowruns", "shop", "purchase-42", subresource="status")
        == "/apis/baton.dev/v1alpha1/namespaces/shop/workflowruns/purchase-42/status"
    )


@pytest.mark.parametrize(
    "name",
    [
        "../../kube-system/secrets/admin-token",
        "%2e%2e/%2e%2e/kube-system/secrets/admin-token",
        "..",
        ".",
        "a/b",
        "a?b=c",
        "a#b",
        "Upper",
        "-leading",
        "trailing-",
        "a..b",
        "",
        "x" * 254,
        "tab\tname",
        "é",
    ],
)
def test_an_object_name_outside_kubernetes_rules_is_refused(name: str) -> None:
    with pytest.raises(InvalidNameError, match="not a valid Kubernetes name"):
        core_path("secrets", "shop", name)


@pytest.mark.parametrize("namespace", ["..", "kube-system/secrets", "a.b", "x" * 64, ""])
def test_a_namespace_outside_kubernetes_rules_is_refused(namespace: str) -> None:
    with pytest.raises(InvalidNameError, match="not a valid namespace name"):
        core_path("configmaps", namespace, "history")


def test_dotted_names_are_valid_object_names() -> None:
    assert core_path("secrets", "shop", "tls.example.com").endswith("/secrets/tls.example.com")


def test_a_read_is_counted_as_a_list_of_a_collection_or_a_get_of_an_object() -> None:
    from baton.store.kube import _read_verb, _resource_of

    reads = {
        core_path("configmaps", "shop"): ("list", "configmaps"),
        core_path("configmaps", "shop", "run-history-0"): ("get", "configmaps"),
        path_of("workflowruns"): ("list", "workflowruns"),
        path_of("workflowruns", "shop", "r", subresource="status"): ("get", "workflowruns/status"),
    }
    for path, expected in reads.items():
        assert (_read_verb(path), _resource_of(path)) == expected, path
