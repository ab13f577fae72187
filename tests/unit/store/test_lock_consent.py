"""Consent to cross-namespace locks (baton.store.locks): the lock's namespace lists in its
ConfigMap baton-shared-locks the namespaces, and the lock names, it lets use its locks."""

from __future__ import annotations

from typing import Any

from baton.store.locks import Holder, LockRecord, _owners, consent_refusal


def shared(**data: str) -> dict[str, Any]:
    return {"metadata": {"name": "baton-shared-locks"}, "data": data}


def test_without_the_configmap_every_namespace_is_refused_with_the_fix() -> None:
    refusal = consent_refusal(None, "shared", "team-a", "deploys")
    assert refusal is not None
    assert refusal.startswith("namespace 'shared' does not let 'team-a' use its locks")
    assert "ConfigMap 'baton-shared-locks'" in refusal
    assert "add the key 'team-a'" in refusal


def test_a_namespace_not_listed_is_refused() -> None:
    refusal = consent_refusal(shared(**{"team-b": "*"}), "shared", "team-a", "deploys")
    assert refusal is not None
    assert "add the key 'team-a' to ConfigMap 'baton-shared-locks'" in refusal


def test_a_star_allows_every_lock() -> None:
    assert consent_refusal(shared(**{"team-a": "*"}), "shared", "team-a", "anything") is None


def test_exact_names_and_prefixes_allow_only_those_locks() -> None:
    config_map = shared(**{"team-a": "deploys\naccount-*, exports"})
    for name in ("deploys", "account-7", "exports"):
        assert consent_refusal(config_map, "shared", "team-a", name) is None
    refusal = consent_refusal(config_map, "shared", "team-a", "deploys-2")
    assert refusal is not None
    assert "its lock 'deploys-2'" in refusal


def test_an_empty_list_allows_nothing() -> None:
    assert consent_refusal(shared(**{"team-a": ""}), "shared", "team-a", "x") is not None


def test_a_holder_of_another_namespace_is_shown_and_kept_with_its_namespace() -> None:
    holder = Holder("u/step", "transfer-7", "u", "step", "", namespace="team-b")
    assert holder.shown == "team-b/transfer-7"
    assert Holder.from_json(holder.to_json()) == holder
    local = Holder("v/step", "pay-1", "v", "step", "")
    assert local.shown == "pay-1"
    assert "namespace" not in local.to_json()


def test_only_runs_of_the_lock_namespace_own_the_lock_object() -> None:
    record = LockRecord(kind="mutex", name="m")
    record.enqueue(Holder("u/s", "transfer-7", "u", "s", "", namespace="team-b"))
    record.enqueue(Holder("v/s", "pay-1", "v", "s", ""))
    assert [owner["uid"] for owner in _owners(record)] == ["v"]
