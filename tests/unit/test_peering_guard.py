"""baton.handlers.peering.standby: kopf's rule for pausing, plus our own lapsed keep-alive."""

from __future__ import annotations

from datetime import UTC, datetime

from baton.handlers.peering import PeeringObject, missing_peering, standby

NOW = 1_800_000_000.0


def peer(priority: int, age: float = 1.0, lifetime: int = 60) -> dict[str, object]:
    seen = datetime.fromtimestamp(NOW - age, UTC).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen}


def test_alone_and_alive_is_active() -> None:
    assert not standby({"me": peer(10)}, "me", 10, NOW)


def test_a_live_peer_of_higher_or_equal_priority_makes_a_standby() -> None:
    assert standby({"me": peer(10), "new": peer(20)}, "me", 10, NOW)
    assert standby({"me": peer(10), "twin": peer(10)}, "me", 10, NOW)  # kopf pauses both


def test_lower_or_dead_peers_do_not_count() -> None:
    status = {"me": peer(10), "old": peer(5), "gone": peer(99, age=61)}
    assert not standby(status, "me", 10, NOW)


def test_own_keep_alive_missing_or_lapsed_makes_a_standby() -> None:
    assert standby({"other": peer(1)}, "me", 10, NOW)
    assert standby({"me": peer(10, age=6, lifetime=5)}, "me", 10, NOW)
    assert standby({"me": {"priority": 10}}, "me", 10, NOW)  # no lastseen: not trusted


def test_a_missing_peering_object_makes_a_standby() -> None:
    assert standby(None, "me", 10, NOW)


def test_a_missing_peering_is_named_with_the_manifest_that_creates_it() -> None:
    cluster_wide = missing_peering(PeeringObject("baton", None))
    assert "ClusterKopfPeering 'baton' does not exist" in cluster_wide
    assert "{apiVersion: kopf.dev/v1, kind: ClusterKopfPeering, metadata: {name: baton}}" in (
        cluster_wide
    )
    namespaced = missing_peering(PeeringObject("baton", "team-a"))
    assert "kind: KopfPeering, metadata: {name: baton, namespace: team-a}" in namespaced
