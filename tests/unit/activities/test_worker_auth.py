"""A worker with tokens runs a task only for a bearer token of its token directory, and
follows a rotation of the files without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from baton_activities import Tokens, Worker
from sdk_sample import appraise
from sdkserver import serve

pytestmark = pytest.mark.timeout(60)

BODY = {"input": {"address": "1 Elm St", "price": "1"}, "idempotencyKey": "", "attempt": 1}


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    (tmp_path / "current").write_text("alpha")
    return tmp_path


@pytest.fixture
def url(tokens: Path) -> Iterator[str]:
    with serve(Worker([appraise], tokens=Tokens([tokens], refresh=0))) as base:
        yield base


def post(url: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/activities/appraise", json=BODY, headers=headers, timeout=30)


def test_a_task_without_a_token_is_refused_and_not_run(url: str) -> None:
    response = post(url, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "Unauthorized"
    assert "baton_worker_tasks_total" not in httpx.get(f"{url}/metrics").text.split("# TYPE")[-1]


def test_a_task_with_a_wrong_token_is_refused(url: str) -> None:
    assert post(url, "beta").status_code == 401
    assert post(url, "alph").status_code == 401


def test_a_task_with_the_token_runs(url: str) -> None:
    assert post(url, "alpha").json() == {"output": {"address": "1 Elm St", "value": 2}}


def test_every_key_of_the_directory_is_accepted_and_changes_are_followed(
    url: str, tokens: Path
) -> None:
    (tokens / "next").write_text("beta\n")
    assert post(url, "beta").status_code == 200
    assert post(url, "alpha").status_code == 200
    (tokens / "current").write_text("beta")
    (tokens / "next").unlink()
    assert post(url, "alpha").status_code == 401
    assert post(url, "beta").status_code == 200


def test_a_missing_token_directory_accepts_nothing(tmp_path: Path) -> None:
    with serve(Worker([appraise], tokens=Tokens([tmp_path / "absent"]))) as base:
        assert post(base, None).status_code == 401
        assert post(base, "anything").status_code == 401


def test_health_and_metrics_need_no_token(url: str) -> None:
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/metrics").status_code == 200
    assert httpx.get(f"{url}/activities").status_code == 401


def test_the_token_directory_comes_from_the_environment(
    tokens: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_WORKER_TOKENS", str(tokens))
    with serve(Worker([appraise])) as base:
        assert post(base, None).status_code == 401
        assert post(base, "alpha").status_code == 200
