"""`baton operator` flags: --priority auto, --metrics-port, --shard and the pod policy."""

from __future__ import annotations

import argparse

import pytest

from baton.cli import operator
from baton.settings import OperatorSettings


def parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    operator.register(parser.add_subparsers())
    return parser.parse_args(["operator", *args])


def test_auto_priorities_grow_with_the_start_time() -> None:
    earlier = [operator.auto_priority(1_800_000_000.000) for _ in range(50)]
    later = [operator.auto_priority(1_800_000_000.001) for _ in range(50)]
    assert max(earlier) < min(later)
    assert operator.auto_priority(4_000_000_000.0) < 2**53  # exact as JSON numbers


def test_priority_is_an_integer_or_auto() -> None:
    assert parse("--priority", "auto").priority == "auto"
    assert parse("--priority", "7").priority == 7
    with pytest.raises(SystemExit):
        parse("--priority", "high")


def test_metrics_port_defaults_to_9090_and_0_disables() -> None:
    assert parse().metrics_port == 9090
    assert parse("--metrics-port", "0").metrics_port == 0


def test_shard_is_a_label_value() -> None:
    assert parse().shard is None
    assert parse("--shard", "eu-1").shard == "eu-1"
    with pytest.raises(SystemExit):
        parse("--shard", "-eu")
    with pytest.raises(SystemExit):
        parse("--shard", "x" * 64)


def test_a_shard_labels_what_the_operator_creates() -> None:
    assert OperatorSettings(extra_labels={"team": "a"}).created_labels == {"team": "a"}
    sharded = OperatorSettings(extra_labels={"team": "a"}, shard="eu-1")
    assert sharded.created_labels == {"team": "a", "baton.dev/shard": "eu-1"}


def test_the_job_pod_policy_allows_nothing_unless_flags_allow_it() -> None:
    settings = operator.settings_of(parse("--standalone"))
    assert (settings.pod_service_accounts, settings.job_pod_annotations) == ((), ())
    settings = operator.settings_of(
        parse(
            "--standalone",
            "--allow-service-account",
            "ci-*",
            "--allow-service-account",
            "reporter",
            "--allow-job-pod-annotation",
            "sidecar.istio.io/*",
        )
    )
    assert settings.pod_service_accounts == ("ci-*", "reporter")
    assert settings.job_pod_annotations == ("sidecar.istio.io/*",)
