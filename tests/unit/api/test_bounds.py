"""Bounds the schema puts on what users write: durations and run names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baton.api.crd import custom_resource_definitions
from baton.api.duration import (
    MAX_DURATION_DAYS,
    MAX_DURATION_LENGTH,
    DurationError,
    parse_duration,
)
from baton.api.resources import first_problem
from baton.api.run import MAX_RUN_NAME_LENGTH, WorkflowRunSpec
from baton.api.workflow import COMPUTED_DURATION_PATTERN, MAX_EXPRESSION_LENGTH, WorkflowSpec


def test_a_duration_longer_than_the_limit_is_refused_naming_the_limit() -> None:
    assert parse_duration(f"{MAX_DURATION_DAYS}d") == MAX_DURATION_DAYS * 86400
    with pytest.raises(DurationError, match=f"longer than the {MAX_DURATION_DAYS}d"):
        parse_duration("99999999d")


def test_a_duration_of_hundreds_of_digits_is_refused_by_length_not_parsed() -> None:
    with pytest.raises(DurationError, match=f"at most {MAX_DURATION_LENGTH} characters"):
        parse_duration("9" * 400 + "s")


def test_models_refuse_an_unbounded_sleep_and_ttl_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        WorkflowSpec.model_validate({"steps": [{"name": "s", "sleep": {"duration": "99999999d"}}]})
    assert first_problem(refused.value, WorkflowSpec).startswith("steps[0].sleep.duration: ")
    with pytest.raises(ValidationError, match="ttlAfterFinished"):
        WorkflowRunSpec.model_validate(
            {"workflowRef": {"name": "w"}, "ttlAfterFinished": "3000000d"}
        )


def test_every_duration_in_the_crds_has_a_length_bound() -> None:
    def walk(node: object) -> int:
        found = 0
        if isinstance(node, dict):
            pattern = node.get("pattern", "")
            if pattern.startswith("^([0-9]+"):
                # A computed duration holds an expression, bounded as one.
                computed = pattern == COMPUTED_DURATION_PATTERN
                bound = MAX_EXPRESSION_LENGTH + 16 if computed else MAX_DURATION_LENGTH
                assert node.get("maxLength") == bound
                found += 1
            found += sum(walk(v) for v in node.values())
        elif isinstance(node, list):
            found += sum(walk(v) for v in node)
        return found

    assert walk(custom_resource_definitions()) > 10


def test_the_workflowrun_crd_bounds_the_run_name() -> None:
    crd = next(
        c for c in custom_resource_definitions() if c["spec"]["names"]["kind"] == "WorkflowRun"
    )
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["metadata"]["properties"]["name"] == {
        "type": "string",
        "maxLength": MAX_RUN_NAME_LENGTH,
    }
