"""`baton operator` flags: --priority auto, --metrics-port, --shard, the HTTP limits,
--history-chunk-bytes and the pod policy."""

from __future__ import annotations

import argparse
import re

import pytest

from baton.cli import CommandError, operator
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


def test_http_limit_flags_reach_the_settings() -> None:
    args = parse(
        "--http-default-timeout",
        "30",
        "--http-max-connections",
        "40",
        "--http-calls-per-namespace",
        "8",
        "--http-calls-per-run",
        "2",
        "--worker-max-connections",
        "300",
        "--worker-calls-per-namespace",
        "60",
    )
    settings = operator.operator_settings(args)
    assert settings.http_default_timeout == 30.0
    assert settings.http_max_connections == 40
    assert settings.http_calls_per_namespace == 8
    assert settings.http_calls_per_run == 2
    assert settings.worker_max_connections == 300
    assert settings.worker_calls_per_namespace == 60


def test_http_limits_default_to_a_namespace_share_below_the_pool() -> None:
    settings = operator.operator_settings(parse())
    assert settings.http_default_timeout == 60.0
    assert settings.http_calls_per_run < settings.http_calls_per_namespace
    assert settings.http_calls_per_namespace < settings.http_max_connections
    assert settings.worker_calls_per_namespace < settings.worker_max_connections


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--http-calls-per-namespace", "100"],
            "--http-calls-per-namespace (100) must be below --http-max-connections (100)",
        ),
        (
            ["--worker-max-connections", "50"],
            "--worker-calls-per-namespace (250) must be below --worker-max-connections (50)",
        ),
        (["--http-calls-per-run", "0"], "--http-calls-per-run must be at least 1, not 0"),
        (
            ["--http-default-timeout", "0"],
            "--http-default-timeout must be a positive number of seconds, not 0.0",
        ),
        (
            ["--http-default-timeout", "inf"],
            "--http-default-timeout must be a positive number of seconds, not inf",
        ),
    ],
)
def test_http_limits_that_leave_no_room_are_refused_naming_the_flag(
    flags: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        operator.run(parse(*flags))


def test_history_chunk_bytes_defaults_to_the_setting_and_stays_under_etcds_limit() -> None:
    assert parse().history_chunk_bytes == OperatorSettings().history_chunk_bytes
    settings = operator.operator_settings(parse("--history-chunk-bytes", "2048"))
    assert settings.history_chunk_bytes == 2048
    for bad in ("0", "lots", str(2 * 1024 * 1024)):
        with pytest.raises(SystemExit):
            parse("--history-chunk-bytes", bad)


def test_the_job_pod_policy_allows_nothing_unless_flags_allow_it() -> None:
    settings = operator.operator_settings(parse("--standalone"))
    assert (settings.pod_service_accounts, settings.job_pod_annotations) == ((), ())
    settings = operator.operator_settings(
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


def test_status_interval_defaults_to_the_setting_and_takes_seconds_up_to_an_hour() -> None:
    assert parse().status_interval == OperatorSettings().status_interval == 30.0
    assert operator.operator_settings(parse("--status-interval", "2.5")).status_interval == 2.5
    assert operator.operator_settings(parse("--status-interval", "0")).status_interval == 0.0
    for bad in ("-1", "soon", "nan", "3601"):
        with pytest.raises(SystemExit):
            parse("--status-interval", bad)


def test_job_ttl_defaults_to_the_setting_and_takes_whole_seconds_up_to_a_week() -> None:
    assert operator.operator_settings(parse()).job_ttl_seconds == 600
    assert operator.operator_settings(parse("--job-ttl", "0")).job_ttl_seconds == 0
    assert operator.operator_settings(parse("--job-ttl", "604800")).job_ttl_seconds == 604800
    for bad in ("-1", "1.5", "soon", "604801"):
        with pytest.raises(SystemExit):
            parse("--job-ttl", bad)
