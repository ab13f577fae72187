"""The web view in headless Chromium against real runs on the local control plane: a saga that
compensated, a run waiting for a signal sent from the page, a forEach of 400 items (under the
500 instances over which a run's status is a summary), a child run, the runs list kept live, a
run's page that hears of a change made before its event stream opened and keeps a payload being
typed when the run changes, and a user who may only read one namespace."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect
from recorder import Recorder, Reply
from runkit import http, run, workflow
from uikit import LIVE, Ui, grant_view, open_run, shoot, start_ui, stop_ui

# The forEach of 400 items may take minutes on a busy machine, and the first test's setup starts
# `baton ui` too.
pytestmark = pytest.mark.timeout(600)


@pytest.mark.usefixtures("operator")
def test_a_saga_that_compensated_shows_what_was_undone(
    ui: Ui, page: Page, runs: Any, recorder: Recorder, namespace: str
) -> None:
    for name in ("flight", "hotel"):
        recorder.script(f"/{name}", Reply(201, body={"id": f"{name}-1"}))

    def booking(name: str) -> dict[str, object]:
        undo = http(f"{recorder.url}/{name}/${{{{ steps.{name}.output.id }}}}", method="DELETE")
        return {"name": name, "http": http(f"{recorder.url}/{name}"), "compensate": {"http": undo}}

    runs.apply(
        [
            workflow(
                "trip",
                [
                    booking("flight"),
                    booking("hotel"),
                    {"name": "pay", "fail": {"error": "CardDeclined"}},
                ],
            ),
            run("trip-1", "trip"),
        ]
    )
    assert runs.wait("trip-1")["phase"] == "Compensated"

    page.goto(f"{ui.url}runs?namespace={namespace}")
    row = page.locator(f'[data-run="{namespace}/trip-1"]')
    expect(row.locator(".phase")).to_have_text("Compensated")
    expect(page.get_by_test_id("count-Compensated")).to_contain_text("1")
    row.get_by_role("link", name="trip-1").click()

    expect(page.get_by_test_id("run-phase")).to_have_text("Compensated")
    expect(page.get_by_test_id("run-error")).to_contain_text("CardDeclined")
    for step in ("flight", "hotel"):
        undo = page.locator(f'[data-step="{step}/compensate"]')
        expect(undo).to_have_attribute("data-phase", "Succeeded")
        expect(undo).to_contain_text(f"undo {step}")
    expect(page.locator('[data-step="pay"]')).to_have_attribute("data-phase", "Failed")
    shoot(page, "saga-graph")

    page.locator('[data-tab="timeline"]').click()
    expect(page.locator('[data-row="hotel/compensate"] [data-kind="compensation"]')).to_have_count(
        1
    )
    expect(page.locator('[data-row="flight"] [data-kind="attempt"]')).to_have_count(1)
    shoot(page, "saga-timeline")

    page.locator('[data-row="flight/compensate"]').click()
    expect(page.get_by_test_id("step-title")).to_have_text("flight/compensate")
    attempts = page.get_by_test_id("attempts")
    uid = runs.get("trip-1")["metadata"]["uid"]
    expect(attempts).to_contain_text(f"{uid}/flight/compensate/1")
    expect(page).to_have_url(re.compile(r"step=flight%2Fcompensate"))


@pytest.mark.usefixtures("operator")
def test_a_run_waiting_for_a_signal_goes_on_when_the_page_sends_it(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    runs.apply(
        [
            workflow(
                "approval",
                [
                    {"name": "approve", "waitForSignal": {"name": "manualApproval"}},
                    {"name": "record", "set": {"ok": "${{ steps.approve.output.ok }}"}},
                ],
                output="${{ vars.ok }}",
            ),
            run("approval-1", "approval"),
        ]
    )
    runs.wait("approval-1", step="approve", step_phase="Waiting")
    open_run(page, ui, namespace, "approval-1")
    expect(page.locator('[data-step="approve"]')).to_have_attribute("data-phase", "Waiting")
    expect(page.get_by_test_id("signal-name")).to_have_value("manualApproval")
    shoot(page, "signal-waiting")

    page.get_by_test_id("signal-payload").fill("{not json")
    page.get_by_test_id("send-signal").click()
    expect(page.get_by_test_id("action-result")).to_contain_text("payload: not JSON")
    assert not runs.get("approval-1")["spec"].get("signals")

    page.get_by_test_id("signal-payload").fill('{"ok": true}')
    page.get_by_test_id("send-signal").click()
    expect(page.get_by_test_id("action-result")).to_contain_text("spec.signals[0]")
    expect(page.get_by_test_id("signal-payload")).to_have_value("")  # sent: no longer a draft
    # No reload: the watch pushes the operator's progress to the page.
    expect(page.get_by_test_id("run-phase")).to_have_text("Succeeded", timeout=LIVE)
    assert runs.get("approval-1")["spec"]["signals"] == [
        {"name": "manualApproval", "payload": {"ok": True}}
    ]
    page.locator('[data-tab="signals"]').click()
    expect(page.get_by_test_id("signals")).to_contain_text("manualApproval")
    expect(page.get_by_test_id("signals")).to_contain_text("yes")
    page.locator('[data-tab="history"]').click()
    expect(page.get_by_test_id("history")).to_contain_text("SignalReceived")
    shoot(page, "signal-received")


@pytest.mark.usefixtures("operator")
def test_a_for_each_of_400_items_shows_counts_and_unfolds_into_items(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    runs.apply(
        [
            workflow(
                "fan",
                [
                    {
                        "name": "charges",
                        "forEach": {
                            "items": "input.items",
                            "concurrency": 50,
                            "step": {"name": "charge", "set": {"last": "${{ item }}"}},
                        },
                    }
                ],
            ),
            run("fan-1", "fan", {"items": list(range(400))}),
        ]
    )
    assert runs.wait("fan-1", timeout=300)["phase"] == "Succeeded"
    open_run(page, ui, namespace, "fan-1")
    node = page.locator('[data-step="charges"]')
    expect(node).to_contain_text("400 items: 400 succeeded")
    # Folded, the forEach is one box: no box per item.
    expect(page.get_by_test_id("graph-node")).to_have_count(1)
    expect(page.locator("[data-item]")).to_have_count(0)
    shoot(page, "foreach-folded")

    node.get_by_test_id("fold").click()
    expect(page.locator("[data-item]")).to_have_count(400)
    page.locator('[data-item="charges[42].charge"]').click()
    expect(page.get_by_test_id("step-title")).to_have_text("charges[42].charge")
    shoot(page, "foreach-unfolded")

    # The step is in the URL: opening it again shows the same step.
    url = page.url
    page.goto(url)
    expect(page.get_by_test_id("step-title")).to_have_text("charges[42].charge")
    expect(page.get_by_test_id("step-panel")).to_contain_text("Succeeded")


@pytest.mark.usefixtures("operator")
def test_a_child_run_is_a_link_to_its_own_page(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    runs.apply(
        [
            workflow("leaf", [{"name": "work", "set": {"done": True}}]),
            workflow("tree", [{"name": "branch", "workflow": {"workflowRef": "leaf"}}]),
            run("tree-1", "tree"),
        ]
    )
    assert runs.wait("tree-1")["phase"] == "Succeeded"
    child = runs.get("tree-1")["status"]["steps"]["branch"]
    assert child["phase"] == "Succeeded"
    open_run(page, ui, namespace, "tree-1")
    link = page.get_by_test_id("child-link")
    expect(link).to_contain_text("Succeeded")
    link.click()
    expect(page).to_have_url(re.compile(rf"/runs/{namespace}/tree-1-"))
    child_name = page.get_by_test_id("run-name").inner_text()
    assert child_name.startswith("tree-1-")
    expect(page.get_by_test_id("run-phase")).to_have_text("Succeeded")
    expect(page.locator('[data-step="work"]')).to_have_attribute("data-phase", "Succeeded")
    expect(page.get_by_test_id("parent-link")).to_have_text("tree-1")
    shoot(page, "child-run")


@pytest.mark.usefixtures("operator")
def test_the_runs_list_shows_a_new_run_without_a_reload(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    runs.apply(workflow("quick", [{"name": "only", "set": {"x": 1}}]))
    page.goto(f"{ui.url}runs?namespace={namespace}")
    expect(page.get_by_test_id("live")).to_contain_text("live")
    expect(page.get_by_test_id("page-range")).to_have_text("0\u20130 of 0")
    runs.apply([run("quick-1", "quick"), run("quick-2", "quick")])
    row = page.locator(f'[data-run="{namespace}/quick-2"]')
    expect(row.locator(".phase")).to_have_text("Succeeded", timeout=LIVE)
    expect(page.get_by_test_id("count-Succeeded")).to_contain_text("2", timeout=LIVE)
    page.get_by_test_id("filter-search").fill("quick-1")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"search=quick-1"))
    shoot(page, "runs-list")


def _view_only_kubeconfig(cluster: Any, namespace: str, directory: Path) -> Path:
    """A kubeconfig of a ServiceAccount bound to `view` in `namespace` only."""
    token = grant_view(cluster, namespace, "reader")
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "-o", "json").stdout)
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [
            {
                "name": "reader",
                "context": {"cluster": "c", "user": "reader", "namespace": namespace},
            }
        ],
        "current-context": "reader",
    }
    path = directory / "reader.kubeconfig"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.usefixtures("operator")
def test_a_user_who_may_only_read_sees_their_namespace_and_the_servers_refusal(
    crds: Any, page: Page, runs: Any, namespace: str, tmp_path: Path
) -> None:
    runs.apply(
        [
            workflow("hold", [{"name": "approve", "waitForSignal": {"name": "go"}}]),
            run("mine-1", "hold"),
        ]
    )
    runs.wait("mine-1", step="approve", step_phase="Waiting")
    kubeconfig = _view_only_kubeconfig(crds, namespace, tmp_path)
    reader = start_ui({**crds.env, "KUBECONFIG": str(kubeconfig)})
    try:
        page.goto(f"{reader.url}runs")
        expect(page.locator(f'[data-run="{namespace}/mine-1"]')).to_have_count(1)
        # Runs of other namespaces (the other tests') are not listed: the user may not read them.
        rows = page.get_by_test_id("run-row")
        assert all(
            (r.get_attribute("data-run") or "").startswith(f"{namespace}/") for r in rows.all()
        )
        page.locator(f'[data-run="{namespace}/mine-1"] a').click()
        expect(page.get_by_test_id("run-phase")).to_have_text("Running")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("cancel").click()
        result = page.get_by_test_id("action-result")
        expect(result).to_contain_text("refused (403)")
        expect(result).to_contain_text("cannot patch resource")
        assert not runs.get("mine-1")["spec"].get("cancel")
    finally:
        stop_ui(reader)


@pytest.mark.usefixtures("operator")
def test_a_workflow_page_starts_a_run_its_input_schema_accepts(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    schema = {
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"type": "integer"}},
    }
    runs.apply(
        workflow(
            "calc", [{"name": "double", "set": {"x": "${{ input.n * 2 }}"}}], inputSchema=schema
        )
    )
    page.goto(f"{ui.url}workflows")
    page.get_by_test_id("workflows").get_by_role("link", name="calc").click()
    expect(page.locator('[data-step="double"]')).to_have_count(1)

    page.get_by_test_id("run-input").fill('{"n": "three"}')
    page.get_by_test_id("start-run").click()
    expect(page.get_by_test_id("run-result")).to_contain_text("refused (422): input.n:")
    assert not runs.api.list_namespaced_custom_object(
        "baton.dev", "v1alpha1", namespace, "workflowruns"
    )["items"]

    page.get_by_test_id("run-name-input").fill("calc-1")
    page.get_by_test_id("run-input").fill('{"n": 3}')
    page.get_by_test_id("start-run").click()
    expect(page).to_have_url(re.compile(rf"/runs/{namespace}/calc-1$"))
    expect(page.get_by_test_id("run-phase")).to_have_text("Succeeded", timeout=LIVE)
    shoot(page, "workflow-run")

    page.goto(f"{ui.url}pools")
    expect(page.get_by_test_id("pools")).to_be_visible()


def api(ui: Ui, path: str) -> Any:
    with urllib.request.urlopen(f"{ui.url}{path}", timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.usefixtures("operator")
def test_an_offloaded_output_is_fetched_when_its_step_is_opened(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    blob = "x" * 6000
    runs.apply(
        [
            workflow("big", [{"name": "keep", "set": {"blob": "${{ input.blob }}"}}]),
            run("big-1", "big", {"blob": blob}),
        ]
    )
    assert runs.wait("big-1")["phase"] == "Succeeded"
    detail = api(ui, f"api/runs/{namespace}/big-1")
    reference = detail["run"]["status"]["steps"]["keep"]["output"]
    assert set(reference) == {"$ref"}
    assert detail["outputRefs"] == [reference["$ref"]]
    assert [e["type"] for e in detail["history"]][:1] == ["RunStarted"]
    fetched = api(ui, f"api/runs/{namespace}/big-1/outputs/{reference['$ref']}")
    assert fetched["output"] == {"blob": blob}
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(ui, f"api/runs/{namespace}/big-1/outputs/big-1-definition")
    assert refused.value.code == 404

    open_run(page, ui, namespace, "big-1", "?step=keep")
    page.get_by_test_id("load-output").click()
    expect(page.get_by_test_id("output")).to_contain_text('"blob": "xxxx')


def test_keys_move_between_views_and_switch_the_theme(ui: Ui, page: Page) -> None:
    page.goto(f"{ui.url}runs")
    expect(page.get_by_test_id("runs-table")).to_be_visible()
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.keyboard.press("t")
    assert page.evaluate("document.documentElement.dataset.theme") != theme
    page.keyboard.press("/")
    expect(page.get_by_test_id("filter-search")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    page.keyboard.press("w")
    expect(page).to_have_url(re.compile(r"/workflows$"))
    page.keyboard.press("g")
    page.keyboard.press("p")
    expect(page.get_by_test_id("pools")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"/workflows$"))


def test_a_run_page_shows_a_change_made_before_its_event_stream_opened(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    # No operator: the one change to the run is the one made below.
    runs.apply([workflow("quiet", [{"name": "gate", "waitForSignal": {"name": "go"}}])])
    runs.apply([run("quiet-1", "quiet")])

    def change_then_connect(route: Route) -> None:
        # The page has read the run; its stream is not open yet.
        runs.cluster.kubectl(
            *("patch", "workflowrun", "quiet-1", "-n", namespace, "--subresource", "status"),
            *("--type", "merge", "-p", json.dumps({"status": {"phase": "Succeeded"}})),
        )
        time.sleep(2)  # the view's index hears of it before the stream says hello
        route.continue_()

    page.route("**/api/runs/events", change_then_connect, times=1)
    open_run(page, ui, namespace, "quiet-1")
    expect(page.get_by_test_id("run-phase")).to_contain_text("Succeeded", timeout=LIVE)


@pytest.mark.usefixtures("operator")
def test_a_payload_being_typed_is_kept_when_the_run_changes(
    ui: Ui, page: Page, runs: Any, namespace: str
) -> None:
    runs.apply(
        [
            workflow("gate", [{"name": "approve", "waitForSignal": {"name": "manualApproval"}}]),
            run("gate-1", "gate"),
        ]
    )
    runs.wait("gate-1", step="approve", step_phase="Waiting")
    open_run(page, ui, namespace, "gate-1")
    expect(page.get_by_test_id("signal-name")).to_have_value("manualApproval")
    page.get_by_test_id("signal-payload").fill('{"ok": true}')

    # Any write of the run is news to its page, which reads the run again and re-renders.
    with page.expect_response(lambda r: r.url.endswith(f"/api/runs/{namespace}/gate-1")):
        runs.cluster.kubectl("annotate", "workflowrun", "gate-1", "-n", namespace, "seen=yes")

    expect(page.get_by_test_id("signal-payload")).to_have_value('{"ok": true}')
    expect(page.get_by_test_id("signal-name")).to_have_value("manualApproval")
