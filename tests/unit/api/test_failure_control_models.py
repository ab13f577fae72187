"""The failure-control and race fields of the workflow models, and the combinations they
refuse (the same ones the CRD's CEL rules refuse at apply time)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from baton.api import crd
from baton.api.workflow import ParallelMode, Step, WorkflowSpec


def step(data: dict[str, Any]) -> Step:
    return Step.model_validate(data)


def test_needs_and_depends_together_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match="step 'b': give needs or depends, not both"):
        step({"name": "b", "needs": ["a"], "depends": "a.Failed", "sleep": {"duration": "1s"}})


def test_fail_fast_with_a_race_is_refused() -> None:
    with pytest.raises(ValidationError, match="failFast has no effect with mode: race"):
        step(
            {
                "name": "r",
                "parallel": {
                    "mode": "race",
                    "failFast": False,
                    "branches": [
                        {"name": "x", "steps": [{"name": "s", "sleep": {"duration": "1s"}}]}
                    ],
                },
            }
        )


def test_a_parallel_is_all_unless_it_says_race() -> None:
    branches = [{"name": "x", "steps": [{"name": "s", "sleep": {"duration": "1s"}}]}]
    parsed = step({"name": "p", "parallel": {"branches": branches}})
    assert parsed.parallel is not None
    assert parsed.parallel.mode is ParallelMode.ALL


@pytest.mark.parametrize("value", [-1, 101])
def test_a_tolerated_percentage_outside_0_to_100_is_refused(value: int) -> None:
    with pytest.raises(ValidationError, match="toleratedFailurePercentage"):
        step(
            {
                "name": "each",
                "forEach": {
                    "items": "[1]",
                    "toleratedFailurePercentage": value,
                    "step": {"name": "one", "sleep": {"duration": "1s"}},
                },
            }
        )


def test_a_negative_tolerated_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="toleratedFailureCount"):
        step(
            {
                "name": "each",
                "forEach": {
                    "items": "[1]",
                    "toleratedFailureCount": -1,
                    "step": {"name": "one", "sleep": {"duration": "1s"}},
                },
            }
        )


def test_an_unknown_continue_on_outcome_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"continueOn\.error"):
        step({"name": "a", "continueOn": {"error": True}, "sleep": {"duration": "1s"}})


def test_the_run_level_fail_fast_is_read() -> None:
    spec = WorkflowSpec.model_validate(
        {"failFast": False, "steps": [{"name": "a", "sleep": {"duration": "1s"}}]}
    )
    assert spec.fail_fast is False


def _step_schema() -> dict[str, Any]:
    schema = crd.openapi_schema(crd.Workflow)
    return schema["properties"]["spec"]["properties"]["steps"]["items"]


def test_the_crd_refuses_needs_with_depends_at_apply_time() -> None:
    rules = [r["rule"] for r in _step_schema()["x-kubernetes-validations"]]
    assert "!(has(self.needs) && has(self.depends))" in rules


def test_the_crd_refuses_fail_fast_with_a_race_at_apply_time() -> None:
    parallel = _step_schema()["properties"]["parallel"]
    rules = [r["rule"] for r in parallel["x-kubernetes-validations"]]
    assert "!(has(self.failFast) && has(self.mode) && self.mode == 'race')" in rules


def test_kubectl_explain_carries_the_new_fields() -> None:
    properties = _step_schema()["properties"]
    assert properties["depends"]["description"]
    assert properties["continueOn"]["properties"]["failed"]["description"]
    assert properties["parallel"]["properties"]["mode"]["enum"] == ["all", "race"]
    each = properties["forEach"]["properties"]
    assert each["toleratedFailureCount"]["minimum"] == 0
    assert each["toleratedFailurePercentage"]["maximum"] == 100
