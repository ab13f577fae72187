"""`@activity`: a Python function as a Baton worker activity, with its input validated."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

import pydantic

from baton_activities.errors import ActivityError

P = ParamSpec("P")
R = TypeVar("R")

MAX_SHOWN_INPUT = 80
"""Longest rendering of an offending value in an InvalidInput message."""


class Activity(Generic[P, R]):
    """A registered activity; calling it calls the function (handy in unit tests).

    How the step's `input` reaches the function:
    - no parameter: the input is ignored;
    - one parameter of a structured type (a pydantic model, a dataclass, a TypedDict, a dict or
      mapping, `Any` or no annotation): the whole input is validated against it;
    - otherwise the input must be an object whose keys are the parameter names (`def
      refund(payment: str)` takes `{"payment": "ch_1"}`); parameters with defaults may be left
      out, unknown keys are refused.

    A mismatch fails the attempt with a non-retryable `InvalidInput` error naming each field
    that is wrong: the same input would fail the same way on every retry."""

    def __init__(self, fn: Callable[P, R], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)
        self._bind = _binder(fn, self.name)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def bind(self, data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments for a task's input; ActivityError `InvalidInput` when it does not fit."""
        return self._bind(data)

    async def run(self, data: Any) -> Any:
        """Validate `data` and run the function (a sync one in a worker thread, which sees the
        caller's context variables)."""
        args, kwargs = self.bind(data)
        if self.is_async:
            return await typing.cast(Any, self.fn)(*args, **kwargs)
        return await asyncio.to_thread(self.fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<activity {self.name}>"


@overload
def activity(fn: Callable[P, R], /) -> Activity[P, R]: ...


@overload
def activity(*, name: str | None = None) -> Callable[[Callable[P, R]], Activity[P, R]]: ...


def activity(
    fn: Callable[P, R] | None = None, /, *, name: str | None = None
) -> Activity[P, R] | Callable[[Callable[P, R]], Activity[P, R]]:
    """Declare an activity: `@activity` or `@activity(name="charge-card")`. The name (what a
    workflow's `worker.activity` says) defaults to the function's name."""
    if fn is not None:
        return Activity(fn)

    def decorate(f: Callable[P, R]) -> Activity[P, R]:
        return Activity(f, name)

    return decorate


Binder = Callable[[Any], tuple[tuple[Any, ...], dict[str, Any]]]


def _binder(fn: Callable[..., Any], name: str) -> Binder:
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = [
        p
        for p in signature.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if not params:
        return lambda _data: ((), {})

    if len(params) == 1 and takes_whole_input(hints.get(params[0].name, Any)):
        param = params[0]
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(hints.get(param.name, Any))
        has_default = param.default is not inspect.Parameter.empty

        def bind_one(data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
            if data is None and has_default:
                return (), {}
            try:
                value = adapter.validate_python(data)
            except pydantic.ValidationError as exc:
                raise invalid_input(name, exc) from None
            if param.kind is inspect.Parameter.KEYWORD_ONLY:
                return (), {param.name: value}
            return (value,), {}

        return bind_one

    if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in params):
        raise TypeError(f"activity {name}: parameters taken by name cannot be positional-only")
    fields: dict[str, Any] = {
        p.name: (
            hints.get(p.name, Any),
            ... if p.default is inspect.Parameter.empty else p.default,
        )
        for p in params
    }
    model = pydantic.create_model(
        f"{name}_input", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )

    def bind_many(data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ActivityError(
                f"activity {name} takes an object with keys "
                f"{', '.join(fields)}; got {_shown(data)}",
                type="InvalidInput",
                non_retryable=True,
                details={"expected": list(fields)},
            )
        try:
            parsed = model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise invalid_input(name, exc) from None
        given = parsed.model_fields_set
        kwargs = {p.name: getattr(parsed, p.name) for p in params if p.name in given}
        return (), kwargs

    return bind_many


def takes_whole_input(annotation: Any) -> bool:
    """Whether a lone parameter of this type receives the whole input (a structured type)
    rather than the `{name: value}` member of an object."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation) or annotation
    if not isinstance(origin, type):
        return False
    return (
        issubclass(origin, pydantic.BaseModel | Mapping)
        or dataclasses.is_dataclass(origin)
        or typing.is_typeddict(origin)
    )


def invalid_input(name: str, exc: pydantic.ValidationError) -> ActivityError:
    """The non-retryable `InvalidInput` error of a validation failure: one line per field."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "input"
        shown = "" if error["type"] == "missing" else f" (got {_shown(error.get('input'))})"
        problems.append(f"{where}: {error['msg']}{shown}")
    return ActivityError(
        f"input of activity {name} does not match its parameters: " + "; ".join(problems),
        type="InvalidInput",
        non_retryable=True,
        details={"errors": problems},
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_INPUT else text[: MAX_SHOWN_INPUT - 1] + "…"
