"""The web view of what runs exchange besides signals: an update sent from the page and its
answer (accepted with its output, or refused with the reason), a run waiting for a mutex another
run holds, and a step whose output came from the memoization cache."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from recorder import Recorder, Reply
from runkit import http, run, send_signal, workflow
from uikit import LIVE, Ui, open_run, shoot

pytestmark = pytest.mark.timeout(300)


@pytest.mark.usefixtures("operator")
def test_an_update_sent_from_the_page_is_answered_and_a_refused_one_says_why(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    runs.apply(
        [
            workflow(
                "cart",
                [{"name": "shop", "waitForSignal": {"name": "checkout"}}],
                vars={"items": []},
                updates=[
                    {
                        "name": "addItem",
                        "validate": "update.payload.quantity > 0",
                        "message": "the quantity must be positive",
                        "set": {"items": "${{ vars.items + [update.payload.sku] }}"},
                        "output": {"items": "${{ size(vars.items) }}"},
                    }
                ],
            ),
            run("cart-1", "cart"),
        ]
    )
    runs.wait("cart-1", step="shop", step_phase="Waiting")
    open_run(page, ui, namespace, "cart-1", "?tab=signals")
    # The workflow's one handler is offered.
    expect(page.get_by_test_id("update-name")).to_have_value("addItem")

    page.get_by_test_id("update-payload").fill('{"sku": "A-1", "quantity": 2}')
    page.get_by_test_id("send-update").click()
    expect(page.get_by_test_id("action-result")).to_contain_text("spec.updates[0]")
    updates = page.get_by_test_id("updates")
    expect(updates).to_contain_text("Completed", timeout=LIVE)
    expect(updates).to_contain_text('{"items":1}')

    page.get_by_test_id("update-payload").fill('{"sku": "B-2", "quantity": 0}')
    page.get_by_test_id("send-update").click()
    expect(page.get_by_test_id("action-result")).to_contain_text("spec.updates[1]")
    expect(updates).to_contain_text("Refused", timeout=LIVE)
    expect(updates).to_contain_text("the quantity must be positive")
    shoot(page, "updates")
    # A refusal leaves the run as it was: the first answer stands and the run still shops.
    expect(updates).to_contain_text("Completed")
    assert runs.get("cart-1")["status"]["phase"] == "Running"


@pytest.mark.usefixtures("operator")
def test_a_run_waiting_for_a_mutex_says_which_run_holds_it(
    ui: Ui, page: Page, runs: Any, cluster: Any, namespace: str
) -> None:
    runs.apply(
        [
            workflow(
                "guarded",
                [
                    {
                        "name": "hold",
                        "synchronization": {"mutex": "ledger"},
                        "waitForSignal": {"name": "release"},
                    }
                ],
            ),
            run("guarded-1", "guarded"),
        ]
    )
    runs.wait("guarded-1", step="hold", step_phase="Waiting")
    runs.apply([run("guarded-2", "guarded")])
    open_run(page, ui, namespace, "guarded-2")
    waiting = page.get_by_test_id("lock-waiting")
    expect(waiting).to_contain_text("waiting for mutex ledger held by run guarded-1", timeout=LIVE)
    # The step waits for the lock, not yet for its signal.
    expect(page.locator('[data-step="hold"]')).to_contain_text("lock")
    expect(page.get_by_test_id("signal-name")).to_have_value("")
    page.locator('[data-tab="signals"]').click()
    expect(page.get_by_test_id("locks")).to_contain_text("mutex ledger")
    shoot(page, "lock-waiting")

    send_signal(cluster, namespace, "guarded-1", "release")
    # Released by the first run, the lock is the second's: no one is waited for any more.
    expect(page.get_by_test_id("locks")).to_contain_text("holds mutex ledger", timeout=LIVE)
    expect(waiting).to_have_count(0)


@pytest.mark.usefixtures("operator")
def test_a_step_answered_from_the_cache_is_marked_cached(
    ui: Ui, page: Page, runs: Any, recorder: Recorder, namespace: str
) -> None:
    recorder.script("/rate", Reply(200, body={"rate": 1.08}))
    memoized = {
        "name": "rate",
        "http": http(f"{recorder.url}/rate"),
        "memoize": {"key": "${{ input.day }}"},
    }
    runs.apply([workflow("rates", [memoized]), run("rates-1", "rates", {"day": "2026-12-02"})])
    assert runs.wait("rates-1")["phase"] == "Succeeded"
    runs.apply([run("rates-2", "rates", {"day": "2026-12-02"})])
    assert runs.wait("rates-2")["phase"] == "Succeeded"

    open_run(page, ui, namespace, "rates-2")
    expect(page.locator('[data-step="rate"]')).to_contain_text("cached")
    open_run(page, ui, namespace, "rates-1")
    expect(page.locator('[data-step="rate"]')).to_have_attribute("data-phase", "Succeeded")
    expect(page.locator('[data-step="rate"]')).not_to_contain_text("cached")
