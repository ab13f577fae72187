"""The top-level resources (Workflow, WorkflowRun, WorkerPool) and loading them from YAML.

Loading turns pydantic's validation errors into a `ResourceError`: one line per problem, naming
the field path as written in YAML (`spec.steps[2].http.url: field required`) and, where it can,
the fix.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from baton.api.conditions import CONDITIONS_LIST_MAP, Condition
from baton.api.duration import DURATION_PATTERN
from baton.api.pool import WorkerPoolSpec, WorkerPoolStatus
from baton.api.run import WorkflowRunSpec, WorkflowRunStatus
from baton.api.workflow import STEP_NAME_PATTERN, Model, WorkflowSpec

GROUP = "baton.dev"
VERSION = "v1alpha1"
API_VERSION: Literal["baton.dev/v1alpha1"] = "baton.dev/v1alpha1"


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata Baton reads; everything else is kept as is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str | None = Field(None, description="Object name, unique in its namespace.")
    namespace: str | None = Field(None, description="Namespace of the object.")
    uid: str | None = Field(None, description="Unique id the API server assigned.")
    generation: int | None = Field(None, description="Bumped by every change of the spec.")
    labels: dict[str, str] | None = Field(None, description="Labels.")
    annotations: dict[str, str] | None = Field(None, description="Annotations.")


class WorkflowStatus(Model):
    """The operator's verdict on a Workflow definition."""

    observed_generation: int | None = Field(
        None, alias="observedGeneration", description="The spec generation this status follows."
    )
    steps: int | None = Field(
        None,
        ge=0,
        description="Steps in the definition, nested ones (parallel branches, forEach, catch) "
        "included.",
    )
    conditions: list[Condition] | None = Field(
        None,
        json_schema_extra=CONDITIONS_LIST_MAP,
        description="Ready (runs may start from this definition) and Invalid (the definition "
        "was refused; the message says why).",
    )


class Workflow(Model):
    """A versioned workflow definition. Each WorkflowRun snapshots the one it starts with."""

    api_version: Literal["baton.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["Workflow"] = "Workflow"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkflowSpec
    status: WorkflowStatus | None = None


class WorkflowRun(Model):
    """One execution of a workflow, steered through its spec (signals, cancel, suspend)."""

    api_version: Literal["baton.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["WorkflowRun"] = "WorkflowRun"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkflowRunSpec
    status: WorkflowRunStatus | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> WorkflowRun:
        if (self.spec.workflow_ref is None) == (self.spec.workflow is None):
            raise ValueError(
                "spec: give exactly one of workflowRef (the name of a Workflow) "
                "or workflow (an inline definition)"
            )
        return self


class WorkerPool(Model):
    """A Deployment of activity workers behind a Service, scaled from its backlog."""

    api_version: Literal["baton.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["WorkerPool"] = "WorkerPool"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkerPoolSpec
    status: WorkerPoolStatus | None = None


Resource = Workflow | WorkflowRun | WorkerPool
KINDS: dict[str, type[Workflow] | type[WorkflowRun] | type[WorkerPool]] = {
    "Workflow": Workflow,
    "WorkflowRun": WorkflowRun,
    "WorkerPool": WorkerPool,
}


class ResourceError(ValueError):
    """A resource that does not load; `messages` holds one line per problem."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


def load_resource(data: Mapping[str, Any]) -> Resource:
    """The typed resource `data` describes; raises ResourceError naming each bad field."""
    if not isinstance(data, Mapping):
        raise ResourceError(
            [f"expected a mapping with apiVersion, kind, metadata and spec, got {_kind_of(data)}"]
        )
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        expected = ", ".join(KINDS)
        got = "field required" if kind is None else f"unknown kind {kind!r}"
        raise ResourceError([f"kind: {got}; Baton's kinds are {expected}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ResourceError(_dedupe(format_error(e, model) for e in exc.errors())) from None


def load_yaml_documents(text: str) -> list[Resource]:
    """Every resource in a multi-document YAML text, empty documents skipped.

    Problems in any document are collected, each line prefixed with the document's position
    and name, and raised together as one ResourceError.
    """
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ResourceError([_yaml_problem(exc)]) from None
    resources: list[Resource] = []
    problems: list[str] = []
    for number, document in enumerate(documents, start=1):
        try:
            resources.append(load_resource(document))
        except ResourceError as exc:
            where = f"document {number}{_describe(document)}"
            problems.extend(f"{where}: {message}" for message in exc.messages)
    if problems:
        raise ResourceError(problems)
    return resources


def first_problem(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first problem of a failed validation of `root`, as `format_error` words it."""
    return format_error(exc.errors()[0], root)


def format_error(error: ErrorDetails, root: type[BaseModel]) -> str:
    """One line for one pydantic error: the YAML path of the field, then what is wrong."""
    path, owner = _resolve(error["loc"], root)
    message = _message(error, owner)
    return f"{path}: {message}" if path else message


def _message(error: ErrorDetails, owner: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return _unknown_field(str(error["loc"][-1]), owner)
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if pattern == DURATION_PATTERN:
            return (
                f"malformed duration {value!r}: use numbers with units ms, s, m, h or d, "
                "like 30s or 1h30m"
            )
        if pattern == STEP_NAME_PATTERN:
            return (
                f"invalid step name {value!r}: start with a lowercase letter, then letters, "
                "digits, underscores or hyphens, not ending in a hyphen, at most 63 "
                "characters (like charge-card or charge_card)"
            )
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    message = error["msg"][:1].lower() + error["msg"][1:]
    if isinstance(value, str | int | float | bool) and kind not in {"literal_error", "enum"}:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        message += f", got {shown}"
    return message


def _unknown_field(name: str, owner: Any) -> str:
    if not (isinstance(owner, type) and issubclass(owner, BaseModel)):
        return "unknown field"
    known = [f.alias or attr for attr, f in owner.model_fields.items()]
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; expected one of {', '.join(known)}"


def _resolve(loc: tuple[int | str, ...], root: type[BaseModel]) -> tuple[str, Any]:
    """The YAML path of `loc` and the model that owns its last segment.

    pydantic puts the name of a union member into `loc` when it tries several (`str`,
    `SecretSource`); those are not fields and are left out of the path.
    """
    path = ""
    current: Any = root
    owner: Any = root
    for segment in loc:
        current = _unwrap(current)
        members = _union_members(current)
        if len(members) > 1:
            match = next((m for m in members if _type_name(m) == segment), None)
            if match is not None:
                current = _unwrap(match)
                continue
        owner = current
        if isinstance(segment, int):
            path += f"[{segment}]"
            args = get_args(current)
            current = args[0] if get_origin(current) is list and args else Any
            continue
        path += f".{segment}" if path else str(segment)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = _field_type(current, segment)
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            current = Any
    return path, owner


def _field_type(model: type[BaseModel], name: str) -> Any:
    for attr, field in model.model_fields.items():
        if name in (attr, field.alias):
            return field.annotation
    return Any


def _unwrap(tp: Any) -> Any:
    """`tp` without Annotated and without a `| None`."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        members = _union_members(tp)
        if len(members) == 1:
            tp = members[0]
            continue
        return tp


def _union_members(tp: Any) -> list[Any]:
    """The non-None members of a union type; empty when `tp` is not a union."""
    if get_origin(tp) in (Union, types.UnionType):
        return [m for m in get_args(tp) if m is not type(None)]
    return []


def _type_name(tp: Any) -> str:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return getattr(tp, "__name__", str(tp))


def _dedupe(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _kind_of(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _describe(document: object) -> str:
    if not isinstance(document, Mapping):
        return ""
    kind = document.get("kind")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label = " ".join(str(p) for p in (kind, name) if isinstance(p, str))
    return f" ({label})" if label else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {problem}"
    return f"invalid YAML: {problem}"
