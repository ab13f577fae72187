"""Every example under examples/ run through `baton test --json`, with its outcome pinned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baton.cli.main import main

EXAMPLES = Path(__file__).parents[3] / "examples"
DAY = 86400.0


def baton_test(
    example: str, mocks: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    folder = EXAMPLES / example
    code = main(
        [
            "test",
            str(folder / "workflow.yaml"),
            "--input",
            f"@{folder / 'input.json'}",
            "--mocks",
            str(folder / mocks),
            "--json",
            *extra,
        ]
    )
    assert code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_purchase_saga_compensates_payment_then_reservation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("purchase-saga", "mocks.yaml", capsys)
    assert result["phase"] == "Compensated"
    assert result["compensations"] == ["pay", "reserve"]
    assert result["error"]["type"] == "TitleDisputed"
    assert result["steps"]["pay"]["attempts"] == 2
    assert result["steps"]["transfer"]["attempts"] == 3
    assert result["virtualDuration"] == 2 * 3600 + 3


def test_purchase_saga_succeeds_after_a_day_long_approval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("purchase-saga", "mocks-success.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"transferId": "t-5"}
    assert result["compensations"] == []
    assert result["virtualDuration"] == DAY


def test_onboarding_runs_branches_in_parallel_and_retries_the_credit_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("parallel-onboarding", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"portalUser": "maria", "creditScore": 741}
    assert result["steps"]["rejected"]["phase"] == "Skipped"
    assert result["steps"]["creditCheck"]["attempts"] == 2
    # the longest branch (credit check with its retry, then references) decides the duration
    assert result["virtualDuration"] == 45


def test_onboarding_stops_with_the_validation_reason(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("parallel-onboarding", "mocks-invalid.yaml", capsys)
    assert result["phase"] == "Failed"
    assert result["error"]["type"] == "InvalidApplication"
    assert result["error"]["message"] == "proof of income is missing"
    assert result["steps"].get("portalAccount", {}).get("phase", "Pending") == "Pending"


def test_priority_signal_changes_vars_and_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("interactive-priority", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"booking": "B-9", "priority": "high"}
    assert result["queries"] == {"priority": "high", "stage": "scheduled"}
    assert result["steps"]["expedite"]["phase"] == "Succeeded"


def test_unanswered_approval_times_out_after_seven_days(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("manual-approval", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"approved": False}
    assert result["virtualDuration"] == 7 * DAY
    assert result["steps"]["apply"]["phase"] == "Skipped"
    assert result["steps"]["notifyRejection"]["phase"] == "Succeeded"


def test_approval_signal_on_day_three_applies_the_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("manual-approval", "mocks-approved.yaml", capsys)
    assert result["output"] == {"approved": True}
    assert result["virtualDuration"] == 3 * DAY
    assert result["steps"]["apply"]["phase"] == "Succeeded"


def test_portfolio_values_each_property_in_a_child_run_two_at_a_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("portfolio", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"count": 3, "report": "http://reports/p/1"}
    values = sorted(v["value"] for v in result["steps"]["valuations"]["output"])
    assert values == [120000, 450000, 900000]
    # three one-day inspections, two at a time: two days
    assert result["virtualDuration"] == 2 * DAY
    child_runs = {e["run"] for e in result["events"] if "run" in e}
    assert len(child_runs) == 3


def test_inspections_repeat_daily_until_one_passes(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("long-inspections", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"certificate": "CERT-2026-118"}
    inspections = [
        e for e in result["events"] if e["type"] == "ActivityCompleted" and e["step"] == "inspect"
    ]
    assert len(inspections) == 3
    # two 24 h intervals between inspections, then the 24 h settling sleep
    assert result["virtualDuration"] == 3 * DAY


def test_chunked_batch_imports_chunks_two_at_a_time_with_pauses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("chunked-batch", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"chunks": 4, "rows": 1800}
    # each chunk loads for 2 minutes then pauses 5; four chunks two at a time is two rounds
    assert result["virtualDuration"] == 2 * 7 * 60


def test_a_best_effort_receipt_stays_failed_while_the_order_ships(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("best-effort-receipt", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"shipment": "sh-88", "receiptSent": False}
    assert result["steps"]["receipt"]["phase"] == "Failed"
    assert result["steps"]["receiptTicket"]["phase"] == "Succeeded"


def test_a_declined_card_falls_back_to_the_wallet(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("payment-fallback", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"paidWith": "wallet", "confirmation": "c-400"}
    assert result["steps"]["cardPayment"]["phase"] == "Failed"


def test_a_paid_card_skips_the_wallet(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("payment-fallback", "mocks-card.yaml", capsys)
    assert result["output"] == {"paidWith": "card", "confirmation": "c-401"}
    assert result["steps"]["walletPayment"]["phase"] == "Skipped"


def test_site_checks_all_run_although_one_fails(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("site-checks", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"]["checks"] == {"dns": "Succeeded", "tls": "Failed", "page": "Succeeded"}
    assert result["output"]["verdict"] == {
        "healthy": False,
        "firstProblem": "tlsCheck: certificate expired",
    }
    assert result["virtualDuration"] == 30


def test_provisioning_deletes_the_database_job_and_releases_quota_without_waiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("parallel-provisioning", "mocks.yaml", capsys)
    assert result["phase"] == "Compensated"
    assert result["compensations"] == ["quota"]
    assert result["steps"]["createDatabase"]["phase"] == "Cancelled"
    # the 20-minute Job is not waited for: the run ends when the DNS record is refused
    assert result["virtualDuration"] == 5


def test_an_invoice_batch_tolerates_a_quarter_of_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("invoice-batch", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"invoiced": 6, "failed": [1, 5]}


def test_an_invoice_batch_stops_once_more_fail(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("invoice-batch", "mocks-outage.yaml", capsys)
    assert result["phase"] == "Failed"
    assert result["error"]["type"] == "ToleratedFailureExceeded"
    assert result["error"]["details"]["failed"] == [1, 2, 3]
    assert "invoices[5].invoice" not in result["steps"]


def test_a_slow_vendor_loses_the_race_to_the_list_price(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("quote-race", "mocks.yaml", capsys)
    assert result["output"] == {"source": "patience", "price": 120}
    assert result["steps"]["vendorQuote"]["phase"] == "Cancelled"
    assert result["virtualDuration"] == 30


def test_a_fast_vendor_wins_the_race(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("quote-race", "mocks-fast.yaml", capsys)
    assert result["output"] == {"source": "vendor", "price": 99}
    assert result["steps"]["wait"]["phase"] == "Cancelled"
    assert result["virtualDuration"] == 4


def test_daily_valuations_appraise_each_property_once_and_take_repeats_from_the_cache(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("daily-valuations", "mocks.yaml", capsys)
    assert result["output"] == {"values": [100, 200, 100, 300, 200]}
    assert started(result) == [f"properties[{i}].appraise" for i in (0, 1, 3)]
    hits = [e["step"] for e in result["events"] if e.get("detail", "").startswith("cache hit")]
    assert hits == ["properties[2].appraise", "properties[4].appraise"]
    assert result["steps"]["properties[2].appraise"] == {
        "phase": "Succeeded",
        "attempts": 0,
        "output": {"value": 100},
        "cached": True,
    }


def started(result: dict[str, Any]) -> list[str]:
    return [e["step"] for e in result["events"] if e["type"] == "ActivityStarted"]


def test_locked_deploy_rolls_back_on_a_failed_smoke_test_then_unlocks_and_announces(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("locked-deploy", "mocks.yaml", capsys)
    assert result["phase"] == "Compensated"
    assert result["error"]["type"] == "HealthCheckFailed"
    assert result["compensations"] == ["rollout"]
    order = started(result)
    # the cache is purged once the rollout ended, before the smoke test; the lock is released
    # and the outcome announced after the rollback
    assert order.index("purgeCache") < order.index("smoke")
    assert order.index("rollout/compensate") < order.index("unlock")
    assert result["steps"]["announce"]["phase"] == "Succeeded"
    assert result["steps"]["rollout"]["phase"] == "Succeeded"


def test_locked_deploy_runs_the_same_cleanup_when_it_succeeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("locked-deploy", "mocks-success.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"version": "2.4.1"}
    assert [s for s in started(result) if s in ("purgeCache", "unlock", "announce")] == [
        "purgeCache",
        "unlock",
        "announce",
    ]


def test_locked_deploy_timeout_rolls_back_the_interrupted_rollout_and_cleans_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("locked-deploy", "mocks-timeout.yaml", capsys)
    assert result["phase"] == "TimedOut"
    assert result["error"]["type"] == "Timeout"
    assert result["steps"]["rollout"]["phase"] == "Cancelled"
    assert result["compensations"] == ["rollout"]
    assert result["steps"]["unlock"]["phase"] == "Succeeded"
    # the run's timeout is two hours
    assert result["virtualDuration"] == 2 * 3600


def test_order_with_hyphenated_names_ships_after_a_suspension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("order-fulfilment", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"charge": "ch-77", "tracking": "TRK-5"}
    # suspended at 12h, resumed on day three: shipping starts then and takes two hours
    assert result["virtualDuration"] == 3 * DAY + 2 * 3600
    assert result["steps"]["wait-a-day"]["output"] == {"cancelled": False}


def test_order_cancelled_by_a_hyphenated_signal_refunds_the_card(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("order-fulfilment", "mocks-cancelled.yaml", capsys)
    assert result["phase"] == "Compensated"
    assert result["compensations"] == ["charge-card"]
    assert result["error"]["type"] == "OrderCancelled"


def test_order_run_file_runs_beside_its_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    folder = EXAMPLES / "order-fulfilment"
    args = ["test", str(folder / "run.yaml"), "--mocks", str(folder / "mocks.yaml"), "--json"]
    assert main([*args, "--expect", "Succeeded"]) == 0
    assert json.loads(capsys.readouterr().out)["output"]["tracking"] == "TRK-5"


def test_lease_expiry_sleeps_until_computed_times_and_retries_after_a_computed_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("lease-expiry", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    # Reminder 30 days before 1970-02-10 (day 10), a 10m retry, then a 2-day grace period.
    assert result["output"] == {"closedAt": "1970-01-13T00:10:00Z"}
    assert result["steps"]["remind"]["attempts"] == 2
    assert result["virtualDuration"] == 12 * DAY + 600


def test_rent_collection_retries_each_error_by_its_own_rule_within_the_parallelism(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("rent-collection", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"charged": 8}
    # Two 503s back off 5s (first rule), the timeout 30s (second rule).
    assert result["virtualDuration"] == 40


def test_shopping_cart_updates_answer_or_refuse_and_the_order_takes_the_cart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("shopping-cart", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"]["items"] == [{"sku": "A-1", "quantity": 2}]
    answers = result["updates"]
    assert [answers[k]["outcome"] for k in ("add-a", "add-b", "remove-b")] == ["Completed"] * 3
    assert answers["remove-b"]["output"] == {"items": 1}
    assert answers["add-c"]["reason"].startswith("cannot add C-3: the cart holds 2 of 2")
    assert answers["remove-z"]["reason"] == "Z-9 is not in the cart"


def test_tenancy_ledger_rolls_over_every_year_and_the_last_run_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("tenancy-ledger", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["generations"] == 3  # months 1-12, 13-24, 25-30
    assert result["output"] == {"months": 30, "collected": 36000}
    assert result["virtualDuration"] == 29 * 30 * DAY  # the interval holds across rollovers
    started = [e for e in result["events"] if e["type"] == "RunStarted"]
    assert [e.get("detail", "") for e in started][1:] == [
        f"continues {started[0].get('run', 'tenancy-ledger')}",
        f"continues {started[1]['run']}",
    ]


PINNED = {
    ("tenancy-ledger", "mocks.yaml"),
    ("chunked-batch", "mocks.yaml"),
    ("interactive-priority", "mocks.yaml"),
    ("lease-expiry", "mocks.yaml"),
    ("long-inspections", "mocks.yaml"),
    ("locked-deploy", "mocks.yaml"),
    ("locked-deploy", "mocks-success.yaml"),
    ("locked-deploy", "mocks-timeout.yaml"),
    ("manual-approval", "mocks.yaml"),
    ("manual-approval", "mocks-approved.yaml"),
    ("order-fulfilment", "mocks.yaml"),
    ("order-fulfilment", "mocks-cancelled.yaml"),
    ("parallel-onboarding", "mocks.yaml"),
    ("parallel-onboarding", "mocks-invalid.yaml"),
    ("portfolio", "mocks.yaml"),
    ("purchase-saga", "mocks.yaml"),
    ("purchase-saga", "mocks-success.yaml"),
    ("rent-collection", "mocks.yaml"),
    ("best-effort-receipt", "mocks.yaml"),
    ("payment-fallback", "mocks.yaml"),
    ("payment-fallback", "mocks-card.yaml"),
    ("site-checks", "mocks.yaml"),
    ("parallel-provisioning", "mocks.yaml"),
    ("invoice-batch", "mocks.yaml"),
    ("invoice-batch", "mocks-outage.yaml"),
    ("quote-race", "mocks.yaml"),
    ("quote-race", "mocks-fast.yaml"),
    ("account-transfer", "mocks.yaml"),
    ("shopping-cart", "mocks.yaml"),
    ("daily-valuations", "mocks.yaml"),
}
"""Every (example, mocks) pair the tests above run, with the outcome each pins."""


def test_account_transfer_takes_each_lock_before_its_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("account-transfer", "mocks.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"debited": "d-1", "credited": "c-1"}
    grants = [e["step"] for e in result["events"] if e["type"] == "LockAcquired"]
    assert grants == ["debit", "credit", "export"]
    assert result["virtualDuration"] == 63


def test_every_example_mocks_file_has_its_outcome_pinned_above() -> None:
    found = {(path.parent.name, path.name) for path in EXAMPLES.glob("*/mocks*.yaml")}
    assert found == PINNED, "an example's mocks without a test above pinning what it does"
