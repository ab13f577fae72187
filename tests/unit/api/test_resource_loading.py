"""Loading resources from YAML: valid ones parse, bad ones give one line per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baton.api.pool import ScalingMode
from baton.api.resources import (
    ResourceError,
    WorkerPool,
    Workflow,
    WorkflowRun,
    load_resource,
    load_yaml_documents,
)

REPO = Path(__file__).resolve().parents[3]

VALID = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: purchase, namespace: shop, resourceVersion: "12"}
spec:
  defaults:
    retry: {maxAttempts: 3, initialInterval: 1s}
  steps:
    - name: reserve
      http: {method: POST, url: "http://inventory/reservations"}
      compensate:
        http: {method: DELETE, url: "http://inventory/reservations/1"}
    - name: approval
      waitForSignal: {name: manualApproval, timeout: 7d}
    - name: fanout
      forEach:
        items: "input.parts"
        step:
          name: part
          parallel:
            branches:
              - name: a
                steps: [{name: slow, sleep: {duration: 1h30m}}]
---
apiVersion: baton.dev/v1alpha1
kind: WorkflowRun
metadata: {name: purchase-42}
spec:
  workflowRef: {name: purchase}
  input: {parts: [1, 2]}
  signals: [{name: manualApproval, payload: {ok: true}}]
---
apiVersion: baton.dev/v1alpha1
kind: WorkerPool
metadata: {name: payments}
spec:
  image: registry.example/payments:1.4
  resources: {limits: {cpu: 2, memory: 1Gi}}
"""


def workflow(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "w"},
        "spec": {"steps": list(steps)},
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ResourceError) as caught:
        load_resource(data)
    return caught.value.messages


def test_a_valid_multi_document_file_loads_every_kind() -> None:
    flow, run, pool = load_yaml_documents(VALID)
    assert isinstance(flow, Workflow)
    assert [s.kind for s in flow.spec.steps] == ["http", "waitForSignal", "forEach"]
    assert flow.metadata.model_extra == {"resourceVersion": "12"}
    assert isinstance(run, WorkflowRun)
    assert run.spec.workflow_ref is not None
    assert run.spec.workflow_ref.name == "purchase"
    assert isinstance(pool, WorkerPool)
    assert pool.spec.scaling is ScalingMode.BATON
    assert pool.spec.resources is not None
    assert pool.spec.resources.limits == {"cpu": 2, "memory": "1Gi"}


EXAMPLE_WORKFLOWS = {
    "account-transfer": ["account-transfer"],
    "chunked-batch": ["rent-roll-import", "import-chunk"],
    "dev": ["property-purchase"],
    "interactive-priority": ["maintenance-request"],
    "lease-expiry": ["lease-expiry"],
    "long-inspections": ["renovation-inspections"],
    "locked-deploy": ["locked-deploy"],
    "manual-approval": ["lease-change-approval"],
    "order-fulfilment": ["order-fulfilment"],
    "parallel-onboarding": ["tenant-onboarding"],
    "portfolio": ["portfolio-valuation", "property-valuation"],
    "purchase-saga": ["property-purchase"],
    "rent-collection": ["rent-collection"],
    "best-effort-receipt": ["order-shipping"],
    "payment-fallback": ["payment-fallback"],
    "site-checks": ["site-checks"],
    "parallel-provisioning": ["tenant-provisioning"],
    "invoice-batch": ["invoice-batch"],
    "quote-race": ["quote-race"],
    "shopping-cart": ["shopping-cart"],
    "tenancy-ledger": ["tenancy-ledger"],
    "daily-valuations": ["daily-valuations"],
}
"""The Workflows each examples/*/workflow.yaml defines, in order: the names the README and the
docs run (`baton run property-purchase`), the first one the one `baton test` runs, the others
its child workflows."""


@pytest.mark.parametrize(
    "path", sorted((REPO / "examples").glob("*/workflow.yaml")), ids=lambda p: p.parent.name
)
def test_each_example_file_defines_the_workflows_its_commands_name(path: Path) -> None:
    assert path.parent.name in EXAMPLE_WORKFLOWS, "a new example: list its Workflows above"
    resources = load_yaml_documents(path.read_text(encoding="utf-8"))
    assert [type(r) for r in resources] == [Workflow] * len(resources)
    names = [r.metadata.name for r in resources if isinstance(r, Workflow)]
    assert names == EXAMPLE_WORKFLOWS[path.parent.name]


def test_unknown_step_kind_names_the_field_and_the_likely_fix() -> None:
    assert problems(workflow({"name": "a", "htpp": {"url": "http://x"}})) == [
        "spec.steps[0].htpp: unknown field; did you mean 'http'?"
    ]


def test_two_kinds_in_one_step_names_the_step_and_both_kinds() -> None:
    (message,) = problems(
        workflow({"name": "a", "http": {"url": "http://x"}, "sleep": {"duration": "1s"}})
    )
    assert message.startswith("spec.steps[0]: step 'a' must have exactly one kind of http, job")
    assert message.endswith("found http and sleep")


def test_malformed_duration_names_the_field_and_the_accepted_form() -> None:
    assert problems(workflow({"name": "a", "sleep": {"duration": "5 minutes"}})) == [
        "spec.steps[0].sleep.duration: malformed duration '5 minutes': use numbers with units "
        "ms, s, m, h or d, like 30s or 1h30m, or compute it with ${{ cel }}"
    ]


def test_missing_url_names_the_nested_field() -> None:
    nested = {
        "name": "outer",
        "parallel": {
            "branches": [{"name": "b", "steps": [{"name": "x"}, {"name": "c", "http": {}}]}]
        },
    }
    assert problems(workflow({"name": "a", "sleep": {"duration": "1s"}}, nested))[-1] == (
        "spec.steps[1].parallel.branches[0].steps[1].http.url: field required"
    )


def test_every_problem_is_reported_on_its_own_line() -> None:
    messages = problems(
        workflow(
            {"name": "a", "sleep": {"duration": "soon"}},
            {"name": "b", "http": {"method": "FETCH"}},
        )
    )
    assert len(messages) == 3
    assert all("\n" not in m for m in messages)
    assert str(ResourceError(messages)).splitlines() == messages


def test_invalid_step_name_explains_the_rule() -> None:
    (message,) = problems(workflow({"name": "Reserve", "sleep": {"duration": "1s"}}))
    assert message.startswith("spec.steps[0].name: invalid step name 'Reserve': start with")


@pytest.mark.parametrize("name", ["wait-a-day", "charge-card", "a-1_b", "pay", "pay_2", "a_"])
def test_step_names_accept_hyphens_beside_every_name_valid_before(name: str) -> None:
    document = load_resource(workflow({"name": name, "sleep": {"duration": "1s"}}))
    assert isinstance(document, Workflow)
    assert document.spec.steps[0].name == name


@pytest.mark.parametrize("name", ["wait-", "-wait", "Wait-a-day", "wait a day", "a" * 64])
def test_step_names_ending_in_a_hyphen_or_malformed_are_refused_with_the_rule(name: str) -> None:
    (message,) = problems(workflow({"name": name, "sleep": {"duration": "1s"}}))
    assert message.startswith(f"spec.steps[0].name: invalid step name {name!r}: start with") or (
        len(name) > 63 and "at most 63 characters" in message
    )
    assert "hyphens" in message or len(name) > 63


def test_union_member_names_stay_out_of_the_path() -> None:
    step = {"name": "a", "http": {"url": "http://x", "headers": {"X-Key": 7}}}
    messages = problems(workflow(step))
    assert messages
    assert all(m.startswith("spec.steps[0].http.headers.X-Key: ") for m in messages)


def test_wrong_value_type_shows_the_value_given() -> None:
    (message,) = problems(
        workflow({"name": "a", "sleep": {"duration": "1s"}, "retry": {"maxAttempts": "many"}})
    )
    assert message == (
        "spec.steps[0].retry.maxAttempts: input should be a valid integer, unable to parse "
        "string as an integer, got 'many'"
    )


def test_unknown_kind_lists_the_kinds() -> None:
    assert problems({"apiVersion": "baton.dev/v1alpha1", "kind": "Workflw"}) == [
        "kind: unknown kind 'Workflw'; Baton's kinds are Workflow, WorkflowRun, WorkerPool, "
        "Schedule"
    ]


def test_wrong_api_version_is_refused() -> None:
    data = workflow({"name": "a", "sleep": {"duration": "1s"}})
    data["apiVersion"] = "baton.dev/v1"
    (message,) = problems(data)
    assert message.startswith("apiVersion: input should be 'baton.dev/v1alpha1'")


def test_run_needs_exactly_one_of_workflow_ref_and_inline_workflow() -> None:
    data = {"apiVersion": "baton.dev/v1alpha1", "kind": "WorkflowRun", "spec": {}}
    assert problems(data) == [
        "spec: give exactly one of workflowRef (the name of a Workflow) "
        "or workflow (an inline definition)"
    ]


def test_pool_with_more_min_than_max_replicas_is_refused() -> None:
    data = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkerPool",
        "spec": {"image": "w:1", "minReplicas": 5, "maxReplicas": 2},
    }
    assert problems(data) == ["spec: minReplicas (5) must not exceed maxReplicas (2)"]


def test_pool_needs_an_image_or_an_endpoint() -> None:
    data = {"apiVersion": "baton.dev/v1alpha1", "kind": "WorkerPool", "spec": {}}
    (message,) = problems(data)
    assert "needs an image" in message


def test_pool_defaults() -> None:
    pool = load_resource(
        {
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "WorkerPool",
            "spec": {"endpoint": "http://127.0.0.1:9000"},
        }
    )
    assert isinstance(pool, WorkerPool)
    spec = pool.spec
    assert (spec.port, spec.min_replicas, spec.max_replicas, spec.tasks_per_replica) == (
        8080,
        0,
        10,
        4,
    )
    assert (spec.scale_down_stabilization, spec.idle_timeout) == ("5m", "10m")


def test_errors_in_several_documents_name_each_document() -> None:
    text = (
        "kind: Workflow\napiVersion: baton.dev/v1alpha1\nmetadata: {name: one}\nspec: {}\n"
        "---\n"
        "kind: Nope\n"
    )
    with pytest.raises(ResourceError) as caught:
        load_yaml_documents(text)
    assert caught.value.messages == [
        "document 1 (Workflow one): spec.steps: field required",
        "document 2 (Nope): kind: unknown kind 'Nope'; Baton's kinds are Workflow, WorkflowRun, "
        "WorkerPool, Schedule",
    ]


def test_invalid_yaml_names_line_and_column() -> None:
    with pytest.raises(ResourceError) as caught:
        load_yaml_documents("kind: Workflow\nspec: [unclosed\n")
    (message,) = caught.value.messages
    assert message.startswith("line 3, column 1: invalid YAML:")


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ResourceError) as caught:
        load_yaml_documents("- a\n- b\n")
    assert caught.value.messages == [
        "document 1: expected a mapping with apiVersion, kind, metadata and spec, got a list"
    ]
