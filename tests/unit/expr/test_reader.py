"""Baton's CEL reader (expr/syntax.py) agrees with the CEL core on what is an expression.

The reader guards the core, so a disagreement would refuse a valid expression; generated
expressions of every grammar form are read by both."""

from __future__ import annotations

import cel
from hypothesis import given, settings
from hypothesis import strategies as st

from baton.expr.syntax import MAX_DEPTH, SyntaxLimitError, parse

NAMES = st.sampled_from(["input", "steps", "vars", "a", "b_2"])
FIELDS = st.sampled_from(["x", "output", "items", "amount"])
LITERALS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.integers(0, 1000).map(lambda n: f"{n}u"),
    st.integers(0, 255).map(hex),
    st.floats(0, 1000, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(["true", "false", "null", "'text'", '"q"', "b'x'", "r'\\d'", "'''t'''"]),
)
BINARY = st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||"])


def expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, BINARY, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            st.tuples(inner, FIELDS).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"!{e}"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
            st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
            st.lists(st.tuples(inner, inner), max_size=2).map(
                lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
            ),
            inner.map(lambda e: f"size({e})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}.contains({t[1]})"),
            st.tuples(inner, st.sampled_from(["all", "exists", "map", "filter"]), inner).map(
                lambda t: f"{t[0]}.{t[1]}(v, {t[2]})"
            ),
            st.tuples(inner, inner).map(lambda t: f"{t[0]} in {t[1]}"),
        )

    return st.recursive(st.one_of(NAMES, LITERALS), extend, max_leaves=12)


def core_accepts(source: str) -> bool:
    try:
        cel.compile(source)
    except ValueError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(expressions())
def test_the_reader_reads_every_expression_the_core_compiles(source: str) -> None:
    if not core_accepts(source):
        return
    refused: SyntaxLimitError | None = None
    try:
        tree = parse(source)
    except SyntaxLimitError as exc:
        refused = exc
    if refused is not None:
        assert refused.limit, f"the reader refused {source!r}: {refused}"
    else:
        assert 1 <= tree.depth <= MAX_DEPTH
