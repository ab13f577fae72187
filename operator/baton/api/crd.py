"""CustomResourceDefinitions of Baton's kinds, generated from the pydantic models.

pydantic's JSON Schema is turned into a Kubernetes *structural* schema: `$ref`s inlined, an
optional `X | None` written as `X`, untyped JSON as `x-kubernetes-preserve-unknown-fields`, and
CEL `x-kubernetes-validations` added where the API server can check more than types. The step
model is recursive and Kubernetes schemas cannot be, so nested steps are typed down to
`STEP_SCHEMA_DEPTH` levels and kept as opaque objects below; the operator validates the whole
definition again with the models. docs/architecture.md ("CRD generation") explains the choices.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from baton.api.resources import GROUP, VERSION, Schedule, WorkerPool, Workflow, WorkflowRun
from baton.api.run import MAX_RUN_NAME_LENGTH
from baton.api.schedule import MAX_SCHEDULE_NAME_LENGTH
from baton.api.workflow import MEMOIZE_KINDS_TEXT, STEP_KINDS, Step

STEP_SCHEMA_DEPTH = 3
"""Levels of steps typed in the schema: a workflow's steps, steps nested in them, and one more."""

STEP_RULE_DEPTH = 2
"""Levels of steps that carry CEL rules. Kubernetes multiplies a rule's cost by the most times
it can run (the product of `maxItems` above it); at the third level that exceeds the budget."""

STEP_DESCRIPTION_DEPTH = 1
"""Levels of steps whose fields carry descriptions. `kubectl explain` reads a field's text from
the top-level step; a nested step's fields are the same, and repeating their text in every
copy was half of each CRD's bytes."""

_CLEANUP_LISTS = frozenset({("Step", "finally"), ("WorkflowSpec", "onExit")})
"""Cleanup step lists (`finally`, `onExit`) are opaque objects in the schema: every level of
steps typed is another copy of the step schema, and a CRD must stay well under the 256 KiB
annotation of client-side apply. The operator validates them with the models and reports
problems in the Invalid condition."""

_UNTYPED = "<untyped>"
"""Pushed on the converter's stack under a cleanup list: the steps below it are opaque."""

MANAGED_BY_LABEL = {"app.kubernetes.io/part-of": "baton"}


class CRDGenerationError(Exception):
    """A model uses a JSON Schema construct that has no structural-schema equivalent."""


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry."""

    rule: str
    message: str
    message_expression: str | None = None

    def as_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.message_expression is not None:
            entry["messageExpression"] = self.message_expression
        return entry


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get`."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def as_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class Kind:
    """A resource model and the naming and presentation of its CRD."""

    model: type[BaseModel]
    plural: str
    short_name: str
    columns: tuple[PrinterColumn, ...]
    max_name_length: int | None = None
    """Longest `metadata.name` the API server accepts (None: Kubernetes' own 253)."""

    @property
    def name(self) -> str:
        return self.model.__name__

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")

KINDS: tuple[Kind, ...] = (
    Kind(
        Workflow,
        "workflows",
        "bwf",
        (
            PrinterColumn("Steps", "integer", ".status.steps", "Steps in the definition."),
            PrinterColumn(
                "Ready",
                "string",
                '.status.conditions[?(@.type=="Ready")].status',
                "Whether runs may start from this definition.",
            ),
            _AGE,
        ),
    ),
    Kind(
        WorkflowRun,
        "workflowruns",
        "bwfr",
        (
            PrinterColumn("Workflow", "string", ".spec.workflowRef.name", "The Workflow run."),
            PrinterColumn("Phase", "string", ".status.phase", "Where the run is in its life."),
            PrinterColumn("Step", "string", ".status.currentStep", "The step in progress."),
            PrinterColumn("Progress", "string", ".status.progress", "Steps finished of all."),
            _AGE,
            PrinterColumn(
                "Started", "date", ".status.startedAt", "Time since the run started.", priority=1
            ),
            PrinterColumn(
                "Duration",
                "string",
                ".status.duration",
                "How long the run took, once it ended.",
                priority=1,
            ),
            PrinterColumn(
                "Message",
                "string",
                '.status.conditions[?(@.type=="Succeeded")].message',
                "How the run ended (the error, when it did not succeed), or where it is.",
                priority=1,
            ),
        ),
        max_name_length=MAX_RUN_NAME_LENGTH,
    ),
    Kind(
        WorkerPool,
        "workerpools",
        "bwp",
        (
            PrinterColumn("Desired", "integer", ".status.desiredReplicas", "Workers wanted."),
            PrinterColumn("Ready", "integer", ".status.readyReplicas", "Workers ready."),
            PrinterColumn("Backlog", "integer", ".status.backlog", "Tasks waiting for a worker."),
            _AGE,
        ),
    ),
    Kind(
        Schedule,
        "schedules",
        "bsched",
        (
            PrinterColumn("Workflow", "string", ".spec.workflowRef.name", "The Workflow started."),
            PrinterColumn("Spec", "string", ".status.summary", "The times, in one line."),
            PrinterColumn(
                "Last Run", "date", ".status.lastRunTime", "Nominal time of the last run started."
            ),
            PrinterColumn("Next Run", "string", ".status.nextRunTime", "When the next run starts."),
            PrinterColumn("Active", "integer", ".status.activeRuns", "Runs still going."),
            PrinterColumn("Suspended", "boolean", ".spec.suspend", "Whether times are skipped."),
            _AGE,
        ),
        max_name_length=MAX_SCHEDULE_NAME_LENGTH,
    ),
)


def _step_kind_names() -> list[str]:
    return [Step.model_fields[attr].alias or attr for attr in STEP_KINDS]


def _exactly_one(fields: list[str]) -> str:
    # A sum of conditionals costs a fraction of `[...].filter(k, k).size()`, which matters once
    # the rule's cost is multiplied by the thousands of places a nested step can be.
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " == 1"


_STEP_KINDS_TEXT = ", ".join(_step_kind_names())
_ON_INTERRUPT_TEXT = (
    "only http, job, worker and workflow steps have an activity in flight that a cancel can "
    "interrupt; remove onInterrupt"
)

# Each rule mirrors a check the models make, so the API server refuses what the operator would.
_MODEL_RULES: Mapping[str, tuple[Rule, ...]] = {
    "Step": (
        Rule(
            _exactly_one(_step_kind_names()),
            f"a step must have exactly one kind of {_STEP_KINDS_TEXT}",
            f"'step ' + self.name + ' must have exactly one kind of {_STEP_KINDS_TEXT}'",
        ),
        Rule("!(has(self.needs) && has(self.depends))", "give needs or depends, not both"),
        Rule(
            "!has(self.compensate) || !has(self.compensate.onInterrupt) "
            "|| !self.compensate.onInterrupt "
            "|| has(self.http) || has(self.job) || has(self.worker) || has(self.workflow)",
            _ON_INTERRUPT_TEXT,
            f"'step ' + self.name + ', field compensate.onInterrupt: {_ON_INTERRUPT_TEXT}'",
        ),
        Rule(
            "!has(self.memoize) "
            "|| has(self.http) || has(self.job) || has(self.worker) || has(self.workflow)",
            MEMOIZE_KINDS_TEXT,
            f"'step ' + self.name + ', field memoize: {MEMOIZE_KINDS_TEXT}'",
        ),
    ),
    "RetryPolicy": (
        Rule(
            "!has(self.rules) || (!has(self.errors) && !has(self.when))",
            "with rules, errors and when belong on each rule: move them into the rules",
        ),
    ),
    "ParallelAction": (
        Rule(
            "!(has(self.failFast) && has(self.mode) && self.mode == 'race')",
            "failFast has no effect with mode: race; remove it",
        ),
    ),
    "Compensation": (
        Rule(
            _exactly_one(["http", "job", "worker"]),
            "a compensation needs exactly one of http, job or worker",
        ),
    ),
    "WorkflowRunSpec": (
        Rule(
            "has(self.workflowRef) != has(self.workflow)",
            "give exactly one of workflowRef (the name of a Workflow) "
            "or workflow (an inline definition)",
        ),
    ),
    "ScheduleSpec": (
        Rule(
            "(has(self.cron) && self.cron.size() > 0) || "
            "(has(self.intervals) && self.intervals.size() > 0)",
            "give cron expressions or intervals (or both)",
        ),
    ),
    "WorkerPoolSpec": (
        Rule("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
        Rule(
            "has(self.image) || has(self.endpoint)",
            "give image (workers Baton runs) or endpoint (a worker outside the cluster)",
        ),
    ),
}

_FIELD_RULES: Mapping[tuple[str, str], tuple[Rule, ...]] = {
    ("WorkflowSpec", "steps"): (
        Rule(
            "self.all(s, self.exists_one(t, t.name == s.name))",
            "step names must be unique",
        ),
    ),
    ("WorkflowRunSpec", "signals"): (
        Rule(
            "self.size() >= oldSelf.size() && oldSelf.all(i, s, self[i] == s)",
            "spec.signals is append-only: add signals at the end (path /spec/signals/-); "
            "signals already sent cannot be changed or removed",
        ),
    ),
    ("WorkflowRunSpec", "updates"): (
        Rule(
            "self.size() >= oldSelf.size() && oldSelf.all(i, u, self[i] == u)",
            "spec.updates is append-only: add updates at the end (path /spec/updates/-); "
            "updates already sent cannot be changed or removed",
        ),
    ),
    ("WorkflowSpec", "updates"): (
        Rule(
            "self.all(u, self.exists_one(v, v.name == u.name))",
            "update handler names must be unique",
        ),
    ),
    ("WorkflowRunSpec", "redrive"): (
        Rule("self >= oldSelf", "spec.redrive may only grow: bump it to redrive a failed run"),
    ),
    ("ScheduleSpec", "triggers"): (
        Rule(
            "self.size() >= oldSelf.size() && oldSelf.all(i, s, self[i] == s)",
            "spec.triggers is append-only: add at the end (path /spec/triggers/-)",
        ),
    ),
    ("ScheduleSpec", "backfills"): (
        Rule(
            "self.size() >= oldSelf.size() && oldSelf.all(i, s, self[i] == s)",
            "spec.backfills is append-only: add at the end (path /spec/backfills/-)",
        ),
    ),
    ("WorkflowRunSpec", "workflowRef"): (
        Rule("self == oldSelf", "spec.workflowRef cannot change: start a new run instead"),
    ),
}


_SCALAR_KEYWORDS = ("pattern", "minLength", "maxLength", "minimum", "maximum")
_LIST_KEYWORDS = ("minItems", "maxItems")
_DROPPED_KEYWORDS = ("title", "$defs")
_EXTENSION_KEYWORDS = ("x-kubernetes-list-type", "x-kubernetes-list-map-keys")
"""Kubernetes' own schema extensions, written by models as `json_schema_extra`: kept as is."""
_KNOWN_KEYWORDS = frozenset(
    {
        "$ref",
        "anyOf",
        "type",
        "description",
        "default",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        *_SCALAR_KEYWORDS,
        *_LIST_KEYWORDS,
        *_DROPPED_KEYWORDS,
        *_EXTENSION_KEYWORDS,
    }
)


_SAME_FIELDS_TEXT = (
    " Its fields are those of a top-level step, described there: "
    "`kubectl explain workflow.spec.steps.<field>`."
)


class _Converter:
    """Turns one model's JSON Schema into a structural schema.

    With `defaults` false no default is published: the status is written by the operator alone,
    and filling defaults into it would only add bytes to every status write.
    """

    def __init__(self, defs: Mapping[str, Any], *, defaults: bool) -> None:
        self.defs = defs
        self.defaults = defaults

    def convert(self, node: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[str, Any]:
        out = self._convert(node, stack, path)
        if _recursion_depth(stack) > STEP_DESCRIPTION_DEPTH:
            out.pop("description", None)
        return out

    def _convert(
        self, node: Mapping[str, Any], stack: tuple[str, ...], path: str
    ) -> dict[str, Any]:
        unknown = set(node) - _KNOWN_KEYWORDS
        if unknown:
            raise CRDGenerationError(
                f"{path or '<root>'}: JSON Schema keyword(s) {sorted(unknown)} have no "
                "structural-schema mapping in baton.api.crd"
            )
        if "$ref" in node:
            return self._reference(node, stack, path)
        if "anyOf" in node:
            return self._union(node, stack, path)
        if "enum" in node or "const" in node:
            out = self._scalar(node)
            values = node.get("enum", [node.get("const")])
            out["type"] = node.get("type") or _json_type(values[0])
            out["enum"] = list(values)
            return out
        kind = node.get("type")
        if kind == "null" or isinstance(kind, list):
            raise CRDGenerationError(f"{path or '<root>'}: type {kind!r} has no structural form")
        if kind is None:
            return _opaque(node.get("description"))
        if kind == "object":
            return self._object(node, stack, path)
        if kind == "array":
            out = self._scalar(node)
            out["type"] = "array"
            out.update({k: node[k] for k in _LIST_KEYWORDS if k in node})
            out["items"] = self.convert(node["items"], stack, f"{path}[]")
            return out
        out = self._scalar(node)
        out["type"] = kind
        out.update({k: node[k] for k in _SCALAR_KEYWORDS if k in node})
        return out

    def _scalar(self, node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node.get("description"):
            out["description"] = node["description"]
        if self.defaults and _keeps_default(node.get("default")):
            out["default"] = node["default"]
        out.update({k: node[k] for k in _EXTENSION_KEYWORDS if k in node})
        return out

    def _reference(
        self, node: Mapping[str, Any], stack: tuple[str, ...], path: str
    ) -> dict[str, Any]:
        name = node["$ref"].removeprefix("#/$defs/")
        target = self.defs[name]
        description = node.get("description") or target.get("description")
        if stack.count(name) >= STEP_SCHEMA_DEPTH or _UNTYPED in stack:
            why = "Not typed" if _UNTYPED in stack else "Nested too deep to be typed"
            return _opaque(
                f"{description} {why} in this schema; the operator validates it and reports "
                "problems in the Invalid condition.",
                object_only=True,
            )
        out = self.convert(target, (*stack, name), path)
        out = {**self._scalar(node), **{k: v for k, v in out.items() if k != "description"}}
        out.pop("description", None)
        if description and _recursion_depth((*stack, name)) > STEP_DESCRIPTION_DEPTH:
            description += _SAME_FIELDS_TEXT
        if description:
            out = {"description": description, **out}
        rules = _MODEL_RULES.get(name, ())
        if rules and _recursion_depth((*stack, name)) <= STEP_RULE_DEPTH:
            out["x-kubernetes-validations"] = [r.as_schema() for r in rules]
        return out

    def _union(self, node: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[str, Any]:
        members = [m for m in node["anyOf"] if m.get("type") != "null"]
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if len(members) == 1:
            # A null member is dropped and `nullable` left unset: the API server then prunes an
            # explicit null, which is what `None` means to the models.
            inner = self.convert(members[0], stack, path)
            merged = {**inner, **self._scalar(outer)}
            if "description" in merged:
                merged = {"description": merged.pop("description"), **merged}
            return merged
        types = {m.get("type") for m in members}
        if types == {"string", "integer"}:
            out = self._scalar(outer)
            out["x-kubernetes-int-or-string"] = True
            return out
        # A structural schema gives every node one type; a union of shapes (a string or a
        # secret reference) is kept whole and checked by the operator.
        return _opaque(outer.get("description"))

    def _object(self, node: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[str, Any]:
        out = self._scalar(node)
        out["type"] = "object"
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            owner = stack[-1] if stack else ""
            props: dict[str, Any] = {}
            for prop, schema in properties.items():
                untyped = (_UNTYPED,) if (owner, prop) in _CLEANUP_LISTS else ()
                converted = self.convert(
                    schema, (*stack, *untyped), f"{path}.{prop}" if path else prop
                )
                rules = _FIELD_RULES.get((owner, prop), ())
                if rules and _recursion_depth(stack) <= STEP_RULE_DEPTH:
                    validations = converted.setdefault("x-kubernetes-validations", [])
                    validations.extend(r.as_schema() for r in rules)
                props[prop] = converted
            out["properties"] = props
            if node.get("required"):
                out["required"] = list(node["required"])
        elif isinstance(extra, Mapping) and extra:
            out["additionalProperties"] = self.convert(extra, stack, f"{path}.*")
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out


def _recursion_depth(stack: tuple[str, ...]) -> int:
    """How deep the innermost recursive model is nested (1 for no recursion)."""
    return max(Counter(stack).values(), default=1)


def _opaque(description: str | None, *, object_only: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if description:
        out["description"] = description
    if object_only:
        out["type"] = "object"
    out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _keeps_default(value: Any) -> bool:
    """Defaults of scalars in a spec are published (`kubectl explain` shows them, the API server
    fills them in); null and filled containers are not, null being the same as absent. An empty
    list is published where a model asks for it (`spec.signals`): a JSON patch can append to
    a list only once it exists."""
    return isinstance(value, str | int | float | bool) or value == []


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


_ROOT_FIELDS = {
    "apiVersion": {
        "description": "The versioned schema of this object: baton.dev/v1alpha1.",
        "type": "string",
    },
    "kind": {"description": "The kind of this object.", "type": "string"},
    "metadata": {"type": "object"},
}


def _flat_status(status: dict[str, Any]) -> dict[str, Any]:
    """A status schema whose top-level fields keep their types and descriptions and whose
    objects and lists are opaque below their own description.

    Every status write makes the API server coerce, validate (with ratcheting against the old
    object) and track the managed fields of the whole status against its schema; a run's status
    is written at its start, its end and whenever a user watches something change, and its
    nested parts (`steps`, `locks`, `compensations`, ...) are the bulk of it. Measured with
    bench/status_write_cost.py, a status typed all the way down cost 14.8 ms of API server CPU
    per write against 11.3 with those parts opaque (docs/performance.md, "Runs started
    together, and a lighter status schema"). The status has one
    writer, the operator, which reads it back through the models; the spec, which users write,
    stays typed throughout. The conditions stay typed too: they are the shape every Kubernetes
    user knows, printer columns read them, and there are two or three of them."""
    flat = dict(status)
    fields: dict[str, Any] = {}
    for name, field in status.get("properties", {}).items():
        kind = field.get("type")
        if name == "conditions":
            fields[name] = field
        elif kind == "object" and ("properties" in field or "additionalProperties" in field):
            fields[name] = _opaque(field.get("description"), object_only=True)
        elif kind == "array":
            fields[name] = {
                **({"description": field["description"]} if "description" in field else {}),
                "type": "array",
                "items": _opaque(None),
            }
        else:
            fields[name] = field
    flat["properties"] = fields
    return flat


def openapi_schema(
    model: type[BaseModel], max_name_length: int | None = None, *, flat_status: bool = True
) -> dict[str, Any]:
    """The structural `openAPIV3Schema` of a top-level resource model (`flat_status` false types
    the status all the way down, which bench/status_write_cost.py measures against)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    properties: dict[str, Any] = dict(_ROOT_FIELDS)
    if max_name_length is not None:
        # The one restriction of `metadata` a CRD may declare (with generateName's).
        bounded = {"type": "string", "maxLength": max_name_length}
        properties["metadata"] = {"type": "object", "properties": {"name": bounded}}
    for name in ("spec", "status"):
        if name in raw["properties"]:
            converter = _Converter(defs, defaults=name == "spec")
            converted = converter.convert(raw["properties"][name], (model.__name__,), name)
            flat = name == "status" and flat_status
            properties[name] = _flat_status(converted) if flat else converted
    schema: dict[str, Any] = {
        "description": raw.get("description", ""),
        "type": "object",
        "properties": properties,
        "required": ["spec"],
    }
    return schema


def custom_resource_definition(kind: Kind) -> dict[str, Any]:
    """The `apiextensions.k8s.io/v1` CustomResourceDefinition of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": dict(MANAGED_BY_LABEL)},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.name,
                "listKind": f"{kind.name}List",
                "plural": kind.plural,
                "singular": kind.name.lower(),
                "shortNames": [kind.short_name],
                "categories": ["baton"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [c.as_crd() for c in kind.columns],
                    "schema": {"openAPIV3Schema": openapi_schema(kind.model, kind.max_name_length)},
                }
            ],
        },
    }


def custom_resource_definitions() -> list[dict[str, Any]]:
    """The CRDs of every Baton kind."""
    return [custom_resource_definition(kind) for kind in KINDS]


HEADER = (
    "# Generated by `baton crds` from the models in operator/baton/api. Do not edit:\n"
    "# change the models and run `make crds`.\n"
)


def render(crd: Mapping[str, Any]) -> str:
    """One CRD as a YAML document, header comment included."""
    return HEADER + yaml.safe_dump(dict(crd), sort_keys=False, width=100, allow_unicode=True)


def peering_definitions() -> list[dict[str, Any]]:
    """kopf's peering CRDs (`kopf.dev/v1`), through which operator replicas elect the active
    one: ClusterKopfPeering for a cluster-wide operator, KopfPeering for a namespaced one."""
    crds = []
    for kind, plural, scope in (
        ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        ("KopfPeering", "kopfpeerings", "Namespaced"),
    ):
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.kopf.dev", "labels": dict(MANAGED_BY_LABEL)},
                "spec": {
                    "group": "kopf.dev",
                    "scope": scope,
                    "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "description": "Operator replicas alive, by identity "
                                    "(kopf peering): the one with the highest priority works.",
                                    "properties": {
                                        "status": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        }
                                    },
                                }
                            },
                        }
                    ],
                },
            }
        )
    return crds


def crd_files() -> dict[str, str]:
    """File name (`<plural>.<group>.yaml`) to YAML text: every Baton kind, and kopf's peering."""
    files = {f"{kind.crd_name}.yaml": render(custom_resource_definition(kind)) for kind in KINDS}
    files["kopfpeerings.kopf.dev.yaml"] = "---\n".join(render(c) for c in peering_definitions())
    return files
