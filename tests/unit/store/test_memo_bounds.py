"""The memoization cache's pure parts: entries read as untrusted, and the bounds that evict
the oldest entries first."""

from __future__ import annotations

import json

from baton.store.memo import MAX_BYTES, MAX_ENTRIES, entry_key, evictions, parse_entry


def entry(key: str, stored_at: str, output: object = None) -> str:
    return json.dumps({"key": key, "storedAt": stored_at, "storedBy": "r", "output": output})


def test_an_entry_key_is_a_valid_config_map_key_whatever_the_cache_key_holds() -> None:
    key = entry_key("ünïcode / spaces and ${{ }}")
    assert key.startswith("e-")
    assert len(key) == 42
    assert all(c.isalnum() or c in "-._" for c in key)


def test_entries_that_do_not_parse_are_unreadable_not_errors() -> None:
    for text in ("not json", "[]", '{"key": 3}', '{"key": "k"}', '{"key": "k", "storedAt": "x"}'):
        assert parse_entry(text) is None


def test_a_full_cache_evicts_its_oldest_entry_for_a_new_one() -> None:
    data = {
        f"e-{i:03d}": entry(f"k{i}", f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z")
        for i in range(MAX_ENTRIES)
    }
    assert evictions(data, 100) == ["e-000"]


def test_bytes_over_the_bound_evict_as_many_old_entries_as_needed() -> None:
    big = "x" * (MAX_BYTES // 4)
    data = {
        "e-new": entry("new", "2026-01-03T00:00:00Z", big),
        "e-old": entry("old", "2026-01-01T00:00:00Z", big),
        "e-mid": entry("mid", "2026-01-02T00:00:00Z", big),
    }
    assert evictions(data, MAX_BYTES // 2) == ["e-old", "e-mid"]


def test_unreadable_entries_are_evicted_first() -> None:
    data = {f"e-{i:03d}": entry(f"k{i}", "2026-01-01T00:00:00Z") for i in range(MAX_ENTRIES - 1)}
    data["e-bad"] = "garbage"
    assert evictions(data, 10) == ["e-bad"]


def test_a_cache_within_its_bounds_evicts_nothing() -> None:
    assert evictions({"e-a": entry("a", "2026-01-01T00:00:00Z")}, 1000) == []
