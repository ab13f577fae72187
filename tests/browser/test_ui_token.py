"""`baton ui --auth token`, the mode of an in-cluster deployment: every request acts with the
caller's own bearer token, never with the server's rights, and one without a token is refused.
Two ServiceAccounts, each allowed to read one namespace, on the local control plane."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from runkit import run, workflow
from uikit import Ui, grant_view, start_ui, stop_ui


def call(ui: Ui, path: str, token: str | None = None, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{ui.url}{path}", method=method, data=b"{}" if method == "POST" else None
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.fixture
def other_namespace(crds: Any) -> Iterator[str]:
    core = client.CoreV1Api(crds.api_client)
    name = f"token-other-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def test_token_mode_shows_each_token_only_the_namespaces_it_may_read(
    crds: Any, namespace: str, other_namespace: str
) -> None:
    crds.apply([workflow("w", [{"name": "s", "set": {"x": 1}}]), run("mine", "w")], namespace)
    crds.apply(
        [workflow("w", [{"name": "s", "set": {"x": 1}}]), run("theirs", "w")], other_namespace
    )
    mine = grant_view(crds, namespace, "reader-a")
    theirs = grant_view(crds, other_namespace, "reader-b")
    ui = start_ui(crds.env, "--auth", "token", "--namespaces", f"{namespace},{other_namespace}")
    try:
        status, body = call(ui, "api/runs")
        assert status == 401
        assert "bearer token" in body["error"]
        assert call(ui, "api/runs", "not-a-token")[0] == 401

        status, body = call(ui, "api/runs", mine)
        assert status == 200
        assert [(r["namespace"], r["name"]) for r in body["items"]] == [(namespace, "mine")]
        status, body = call(ui, "api/info", mine)
        assert body["scope"] == [namespace]
        assert set(body["refused"]) == {"*", other_namespace}

        status, body = call(ui, "api/runs", theirs)
        assert [(r["namespace"], r["name"]) for r in body["items"]] == [(other_namespace, "theirs")]

        # Reading the other namespace's run, or writing with a reader's token, is the API
        # server's refusal, passed on as it is.
        status, body = call(ui, f"api/runs/{other_namespace}/theirs", mine)
        assert status == 403
        assert "forbidden" in body["error"]
        status, body = call(ui, f"api/runs/{namespace}/mine/cancel", mine, method="POST")
        assert status == 403
        assert "cannot patch resource" in body["error"]
    finally:
        stop_ui(ui)
