"""Names of Jobs and child runs (baton.api.attempts): valid, and never shared by two attempts.

Properties over long and near-equal run names, keys of every shape the engine makes (hyphenated
names, forEach items, compensations) and recursion far deeper than the ten levels at which a
child used to get its own parent's name."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from baton.api.attempts import NAME_LIMIT, attempt_name
from baton.api.names import SUBDOMAIN_PATTERN
from baton.engine import child_run_name

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
"""Kubernetes' label value rule: a Job's name is its pods' `job-name` label."""

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
run_names = st.lists(_LABEL, min_size=1, max_size=12).map(".".join).filter(lambda n: len(n) <= 200)
step_names = st.from_regex(r"[a-z]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?", fullmatch=True)
keys = st.one_of(
    step_names,
    st.tuples(step_names, st.integers(0, 9999), step_names).map(lambda t: f"{t[0]}[{t[1]}].{t[2]}"),
    step_names.map(lambda n: f"{n}/compensate"),
)
uids = st.uuids().map(str)
attempts = st.integers(1, 10_000)


@given(run_names, uids, keys, attempts)
def test_a_name_is_a_valid_object_name_and_label_value(
    run: str, uid: str, key: str, attempt: int
) -> None:
    name = attempt_name(run, uid, key, attempt)
    assert len(name) <= NAME_LIMIT
    assert re.match(SUBDOMAIN_PATTERN, name), name
    assert LABEL_VALUE.match(name), name
    assert name.endswith(f"-{attempt}")


@given(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=60, max_size=150),
    st.lists(_LABEL, min_size=2, max_size=6, unique=True),
    st.lists(uids, min_size=6, max_size=6, unique=True),
    keys,
    attempts,
)
def test_parents_whose_names_differ_only_past_the_cut_get_distinct_names(
    prefix: str, endings: list[str], parent_uids: list[str], key: str, attempt: int
) -> None:
    parents = [(f"a{prefix}-{end}", uid) for end, uid in zip(endings, parent_uids, strict=False)]
    names = {attempt_name(name, uid, key, attempt) for name, uid in parents}
    assert len(names) == len(parents)


@given(run_names, st.lists(uids, min_size=2, max_size=2, unique=True), keys, attempts)
def test_a_namesake_recreated_later_gets_names_of_its_own(
    run: str, two_uids: list[str], key: str, attempt: int
) -> None:
    first, second = (attempt_name(run, uid, key, attempt) for uid in two_uids)
    assert first != second


@given(run_names, uids, st.lists(keys, min_size=2, max_size=5, unique=True), attempts)
def test_distinct_keys_and_attempts_of_one_run_get_distinct_names(
    run: str, uid: str, several: list[str], attempt: int
) -> None:
    names = {attempt_name(run, uid, key, a) for key in several for a in (attempt, attempt + 1)}
    assert len(names) == 2 * len(several)


@given(
    run_names,
    st.lists(uids, min_size=12, max_size=40, unique=True),
    step_names,
    st.integers(1, 3),
)
def test_a_deep_recursion_never_reuses_an_ancestors_name(
    root: str, level_uids: list[str], key: str, attempt: int
) -> None:
    names = [root]
    for uid in level_uids:  # each level's child, started by the run of the level above
        names.append(child_run_name(names[-1], uid, key, attempt))
    assert len(set(names)) == len(names)
    assert all(len(name) <= NAME_LIMIT for name in names[1:])
