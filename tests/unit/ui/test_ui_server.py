"""The HTTP side of `baton ui` that answers before any request reaches a cluster: the token
mode's refusal, bad filters, unknown API paths, the page served at every deep link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes_asyncio import client
from starlette.testclient import TestClient

from baton.store.kube import Connection, Kube
from baton.ui.access import KubeconfigAccess, TokenAccess
from baton.ui.server import Indexes, create_app

UNREACHABLE = "http://127.0.0.1:9"
"""An API server address nothing answers on: these requests must not need one."""


@pytest.fixture
def token_client() -> Iterator[TestClient]:
    with TestClient(create_app(TokenAccess(UNREACHABLE, None), "token", ["default"])) as c:
        yield c


async def _unreachable_kube() -> Kube:
    # An aiohttp client is made inside the server's event loop.
    return Kube(client.ApiClient(client.Configuration(host=UNREACHABLE)))


@pytest.fixture
def local_client() -> Iterator[TestClient]:
    app = create_app(TokenAccess(UNREACHABLE, None), "kubeconfig", ["default"])
    with TestClient(app, base_url="http://127.0.0.1:8980") as c:
        access = KubeconfigAccess(Connection(c.portal.call(_unreachable_kube), "default"))
        app.state.access = access
        app.state.indexes = Indexes(access, ["default"])
        yield c
        c.portal.call(access.close)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/info"),
        ("GET", "/api/runs"),
        ("GET", "/api/runs/events"),
        ("GET", "/api/runs/ns/r"),
        ("GET", "/api/runs/ns/r/logs"),
        ("POST", "/api/runs/ns/r/cancel"),
        ("GET", "/api/workflows"),
        ("POST", "/api/workflows/ns/w/runs"),
        ("GET", "/api/pools"),
    ],
)
def test_token_mode_refuses_every_api_request_without_a_token(
    token_client: TestClient, method: str, path: str
) -> None:
    response = token_client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in response.json()["error"]


def test_token_mode_refuses_a_header_that_is_not_a_bearer_token(token_client: TestClient) -> None:
    response = token_client.get("/api/runs", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert response.status_code == 401


def test_a_bad_filter_is_a_400_naming_it(local_client: TestClient) -> None:
    response = local_client.get("/api/runs?phase=Done")
    assert response.status_code == 400
    assert response.json()["error"].startswith("phase: unknown phase 'Done'")


def test_a_name_that_cannot_be_a_kubernetes_name_is_a_400(local_client: TestClient) -> None:
    response = local_client.get("/api/runs/ns/Not_A_Name")
    assert response.status_code == 400


def test_an_unknown_api_path_is_a_json_404(local_client: TestClient) -> None:
    response = local_client.get("/api/nothing/here")
    assert response.status_code == 404
    assert response.json() == {"error": "no such API", "status": 404}


@pytest.mark.parametrize("path", ["/", "/runs", "/runs/ns/r?step=a%5B3%5D.b", "/workflows/ns/w"])
def test_every_deep_link_serves_the_page(local_client: TestClient, path: str) -> None:
    response = local_client.get(path)
    assert response.status_code == 200
    assert '<script src="/static/app.js"></script>' in response.text


def test_the_assets_ship_with_the_package_and_stay_small(local_client: TestClient) -> None:
    script = local_client.get("/static/app.js")
    style = local_client.get("/static/app.css")
    assert script.status_code == style.status_code == 200
    assert len(script.content) + len(style.content) < 200 * 1024
    assert "http://" not in local_client.get("/").text.replace("http://www.w3.org", "")


def test_a_page_of_another_site_rebound_to_this_machine_is_refused(
    local_client: TestClient,
) -> None:
    response = local_client.get("/api/runs", headers={"Host": "evil.example:8980"})
    assert response.status_code == 403
    assert "is not this machine" in response.json()["error"]
    assert local_client.get("/", headers={"Host": "localhost:8980"}).status_code == 200


def test_a_write_that_is_not_json_is_refused_before_it_is_read(local_client: TestClient) -> None:
    response = local_client.post(
        "/api/runs/ns/r/cancel", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "a write must be sent as application/json"


def test_a_write_from_another_origin_is_refused(local_client: TestClient) -> None:
    response = local_client.post(
        "/api/runs/ns/r/cancel",
        json={},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "another site (https://evil.example)" in response.json()["error"]


@pytest.mark.parametrize("action", ["signal", "update"])
def test_a_signal_or_update_without_a_name_is_a_400_naming_the_field(
    local_client: TestClient, action: str
) -> None:
    response = local_client.post(f"/api/runs/ns/r/{action}", json={"payload": {"sku": "A-1"}})
    assert response.status_code == 400
    assert response.json()["error"] == f"name: the {action}'s name is required"
