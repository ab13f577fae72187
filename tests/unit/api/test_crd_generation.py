"""CRD generation: the files in crds/ are current, and the schemas are structural and in budget."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from baton.api import crd
from baton.api.duration import DURATION_PATTERN

REPO = Path(__file__).resolve().parents[3]
CRDS = {c["spec"]["names"]["kind"]: c for c in crd.custom_resource_definitions()}
SCHEMAS = {kind: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for kind, c in CRDS.items()}


def nodes(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node with its path (`.spec.steps[]`), depth first."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from nodes(schema["additionalProperties"], f"{path}.*")


def all_nodes() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind, schema in SCHEMAS.items():
        for path, node in nodes(schema):
            yield f"{kind}{path}", node


def test_files_in_crds_directory_are_the_generated_ones() -> None:
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "crds").glob("*.yaml")}
    generated = crd.crd_files()
    stale = sorted(
        n for n in generated.keys() | on_disk.keys() if generated.get(n) != on_disk.get(n)
    )
    assert not stale, f"crds/ is stale ({', '.join(stale)}): run `make crds` and commit the result"


def test_schemas_hold_no_refs_anyof_or_null_types() -> None:
    text = json.dumps(SCHEMAS)
    assert "$ref" not in text
    assert '"anyOf"' not in text
    assert '"type": "null"' not in text


def test_every_object_lists_properties_or_preserves_unknown_fields() -> None:
    bare = [
        path
        for path, node in all_nodes()
        if node.get("type") == "object"
        and not {"properties", "additionalProperties", "x-kubernetes-preserve-unknown-fields"}
        & node.keys()
        and not path.endswith(".metadata")
    ]
    assert not bare, f"objects with no structure: {bare}"


def test_every_node_has_a_type_unless_it_is_opaque_or_int_or_string() -> None:
    untyped = [
        path
        for path, node in all_nodes()
        if "type" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and not node.get("x-kubernetes-int-or-string")
    ]
    assert not untyped, f"nodes without a type: {untyped}"


def test_titles_are_dropped() -> None:
    assert not [path for path, node in all_nodes() if "title" in node]


def test_every_default_satisfies_its_own_schema() -> None:
    wrong = []
    for path, node in all_nodes():
        if "default" not in node:
            continue
        value = node["default"]
        expected = {
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
            "array": list,
        }
        if not isinstance(value, expected[node["type"]]):
            wrong.append(f"{path}: {value!r} is not a {node['type']}")
        if "enum" in node and value not in node["enum"]:
            wrong.append(f"{path}: {value!r} not in {node['enum']}")
        if "pattern" in node and not re.search(node["pattern"], value):
            wrong.append(f"{path}: {value!r} does not match {node['pattern']}")
        if "minimum" in node and value < node["minimum"]:
            wrong.append(f"{path}: {value!r} below {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            wrong.append(f"{path}: {value!r} above {node['maximum']}")
    assert not wrong


def test_a_run_spec_defaults_signals_to_an_empty_list_so_a_json_patch_can_append() -> None:
    signals = SCHEMAS["WorkflowRun"]["properties"]["spec"]["properties"]["signals"]
    assert signals["default"] == []


def test_durations_carry_the_duration_pattern() -> None:
    timeout = SCHEMAS["Workflow"]["properties"]["spec"]["properties"]["timeout"]
    assert timeout["pattern"] == DURATION_PATTERN


def test_nested_steps_are_typed_down_to_the_schema_depth_then_opaque() -> None:
    step = SCHEMAS["Workflow"]["properties"]["spec"]["properties"]["steps"]["items"]
    for _ in range(crd.STEP_SCHEMA_DEPTH - 1):
        assert "properties" in step
        step = step["properties"]["forEach"]["properties"]["step"]
    assert "http" in step["properties"]
    below = step["properties"]["forEach"]["properties"]["step"]
    assert below.get("x-kubernetes-preserve-unknown-fields") is True
    assert "properties" not in below


def test_step_rules_stop_at_the_rule_depth() -> None:
    level = re.compile(r"steps\[\]|\.step(?=\.|$)")
    ruled = {
        len(level.findall(path))
        for path, node in nodes(SCHEMAS["Workflow"])
        if path.endswith(("steps[]", ".step")) and "x-kubernetes-validations" in node
    }
    assert ruled == set(range(1, crd.STEP_RULE_DEPTH + 1))


def test_step_rule_names_every_step_kind() -> None:
    step = SCHEMAS["Workflow"]["properties"]["spec"]["properties"]["steps"]["items"]
    rule = next(r for r in step["x-kubernetes-validations"] if "exactly one kind" in r["message"])
    for kind in ("http", "job", "worker", "workflow", "sleep", "waitForSignal", "parallel"):
        assert f"has(self.{kind})" in rule["rule"]
        assert kind in rule["message"]


def test_every_list_and_map_above_a_rule_is_bounded() -> None:
    # The API server multiplies a rule's cost by how often it can run; an unbounded list or map
    # above it makes that infinite and the CRD is refused.
    def unbounded_above_rules(
        node: Mapping[str, Any], path: str, unbounded: tuple[str, ...]
    ) -> Iterator[str]:
        if "x-kubernetes-validations" in node and unbounded:
            yield f"{path} under {', '.join(unbounded)}"
        for name, child in node.get("properties", {}).items():
            yield from unbounded_above_rules(child, f"{path}.{name}", unbounded)
        if "items" in node:
            bound = () if "maxItems" in node else (path,)
            yield from unbounded_above_rules(node["items"], f"{path}[]", unbounded + bound)
        if isinstance(node.get("additionalProperties"), Mapping):
            bound = () if "maxProperties" in node else (path,)
            extra = node["additionalProperties"]
            yield from unbounded_above_rules(extra, f"{path}.*", unbounded + bound)

    found = [p for kind, s in SCHEMAS.items() for p in unbounded_above_rules(s, kind, ())]
    assert not found


def test_transition_rules_sit_on_bounded_lists_or_scalars() -> None:
    spec = SCHEMAS["WorkflowRun"]["properties"]["spec"]["properties"]
    assert "oldSelf" in spec["signals"]["x-kubernetes-validations"][0]["rule"]
    assert spec["signals"]["maxItems"] <= 1000
    assert spec["redrive"]["x-kubernetes-validations"][0]["rule"] == "self >= oldSelf"


def test_printer_columns_point_at_fields_of_the_schema() -> None:
    missing = []
    for kind, resource in CRDS.items():
        columns = resource["spec"]["versions"][0]["additionalPrinterColumns"]
        for column in columns:
            path = re.sub(r"\[\?.*?\]", "[]", column["jsonPath"])
            if path.startswith(".metadata"):
                continue
            node: Mapping[str, Any] = SCHEMAS[kind]
            for part in re.findall(r"\.(\w+)|(\[\])", path):
                node = node["items"] if part[1] else node.get("properties", {}).get(part[0], {})
            if not node:
                missing.append(f"{kind} {column['name']}: {column['jsonPath']}")
    assert not missing


def test_names_short_names_and_category() -> None:
    names = {kind: c["spec"]["names"] for kind, c in CRDS.items()}
    assert {k: n["shortNames"] for k, n in names.items()} == {
        "Workflow": ["bwf"],
        "WorkflowRun": ["bwfr"],
        "WorkerPool": ["bwp"],
        "Schedule": ["bsched"],
    }
    assert all(n["categories"] == ["baton"] for n in names.values())
    assert {c["metadata"]["name"] for c in CRDS.values()} == {
        "workflows.baton.dev",
        "workflowruns.baton.dev",
        "workerpools.baton.dev",
        "schedules.baton.dev",
    }


def test_one_served_storage_version_with_status_subresource() -> None:
    for resource in CRDS.values():
        (version,) = resource["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}


ANNOTATIONS_LIMIT = 256 * 1024
"""What the API server accepts in all annotations of one object together."""
ANNOTATIONS_HEADROOM = 16 * 1024
"""Left for the CRD's other annotations and the object kubectl wraps around the schema."""


def test_each_crd_fits_the_annotation_kubectl_apply_writes() -> None:
    sizes = {k: len(json.dumps(c, separators=(",", ":"))) for k, c in CRDS.items()}
    too_big = {k: n for k, n in sizes.items() if n > ANNOTATIONS_LIMIT - ANNOTATIONS_HEADROOM}
    assert not too_big, (
        f"CRDs of {too_big} bytes of compact JSON: client-side `kubectl apply -f crds/` copies "
        "the whole object into the last-applied-configuration annotation, and an object's "
        f"annotations may hold {ANNOTATIONS_LIMIT} bytes in all (this test keeps "
        f"{ANNOTATIONS_HEADROOM} for the rest). Lower STEP_DESCRIPTION_DEPTH or "
        "STEP_SCHEMA_DEPTH in baton.api.crd; docs/architecture.md (CRD generation) has the "
        "figures of each"
    )


def test_fields_of_nested_steps_carry_no_descriptions_below_the_description_depth() -> None:
    step = SCHEMAS["Workflow"]["properties"]["spec"]["properties"]["steps"]["items"]
    for _ in range(crd.STEP_DESCRIPTION_DEPTH):
        step = step["properties"]["forEach"]["properties"]["step"]
    described = [path for path, node in nodes(step) if path and "description" in node]
    assert not described, described[:10]


def test_top_level_step_fields_keep_their_descriptions_for_kubectl_explain() -> None:
    step = SCHEMAS["Workflow"]["properties"]["spec"]["properties"]["steps"]["items"]
    undescribed = [
        name for name, field in step["properties"].items() if not field.get("description")
    ]
    assert not undescribed
    assert step["properties"]["http"]["properties"]["url"]["description"]


def test_a_nested_step_points_at_the_top_level_step_for_its_field_descriptions() -> None:
    step = SCHEMAS["Workflow"]["properties"]["spec"]["properties"]["steps"]["items"]
    nested = step["properties"]["forEach"]["properties"]["step"]
    assert "kubectl explain workflow.spec.steps.<field>" in nested["description"]
    assert "description" not in nested["properties"]["http"]


def test_int_or_string_unions_become_int_or_string() -> None:
    pool = SCHEMAS["WorkerPool"]["properties"]["spec"]["properties"]
    quantity = pool["resources"]["properties"]["limits"]["additionalProperties"]
    assert quantity == {
        "description": quantity["description"],
        "x-kubernetes-int-or-string": True,
    }


def test_a_json_schema_keyword_without_mapping_is_refused() -> None:
    class Stamped(BaseModel):
        spec: uuid.UUID

    with pytest.raises(crd.CRDGenerationError, match="format"):
        crd.openapi_schema(Stamped)


def test_a_status_types_its_top_level_fields_and_conditions_and_keeps_the_rest_opaque() -> None:
    status = SCHEMAS["WorkflowRun"]["properties"]["status"]["properties"]
    assert status["phase"]["type"] == "string"
    assert "Succeeded" in status["phase"]["enum"]
    assert status["conditions"]["items"]["properties"]["type"]["type"] == "string"
    assert status["steps"] == {
        "description": status["steps"]["description"],
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert status["compensations"]["items"] == {"x-kubernetes-preserve-unknown-fields": True}


def test_a_typed_status_is_what_the_flat_one_is_measured_against() -> None:
    typed = crd.openapi_schema(crd.WorkflowRun, flat_status=False)
    steps = typed["properties"]["status"]["properties"]["steps"]
    assert steps["additionalProperties"]["properties"]["phase"]["type"] == "string"
