"""The HTTP executor against a real HTTP server on 127.0.0.1: outputs, the idempotency key,
error classification as the engine reads it, timeouts, cancellation and the address guard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

import pytest
from executorkit import RUN, Events, Reply, Request, Server, command, offline_kube

from baton.engine.commands import CancelActivity
from baton.engine.definition import RetryPolicy
from baton.engine.errors import StepError
from baton.engine.events import ActivityCompleted, ActivityFailed
from baton.engine.retry import is_retryable
from baton.executors.http import HttpExecutor, forbidden_address, retry_after_seconds
from baton.settings import OperatorSettings

pytestmark = pytest.mark.timeout(60)

POLICY = RetryPolicy(3, 1.0, 2.0, 100.0, 0.0, frozenset())
"""The engine's default policy: whether an error is retried depends on its type and details."""


def run(scenario: Callable[[HttpExecutor], Awaitable[None]], **settings: Any) -> None:
    """Run `scenario` with an HTTP executor (closed afterwards) on a fresh event loop."""

    async def main() -> None:
        async with offline_kube() as kube:
            executor = HttpExecutor(kube, OperatorSettings(**settings), resolve=_resolve)
            try:
                await scenario(executor)
            finally:
                await executor.close()

    asyncio.run(main())


# Host names of the tests: `*.linklocal.test` resolve to a link-local address, `*.mixed.test`
# to a loopback and a metadata address, `*.local.test` to loopback; everything else as usual.
async def _resolve(host: str, port: int) -> list[str]:
    if host.endswith(".linklocal.test"):
        return ["169.254.10.20"]
    if host.endswith(".mixed.test"):
        return ["127.0.0.1", "169.254.169.254"]
    if host.endswith(".local.test"):
        return ["127.0.0.1"]
    from baton.executors.http import resolve_host

    return await resolve_host(host, port)


async def outcome(executor: HttpExecutor, spec: dict[str, Any], **kw: Any) -> Events:
    events = Events()
    await executor.start(RUN, command("http", spec, **kw), events)
    await events.final()
    return events


def failure(events: Events) -> ActivityFailed:
    final = events.events[-1]
    assert isinstance(final, ActivityFailed), events.events
    return final


def test_a_json_response_is_the_output_and_the_request_is_as_specified(server: Server) -> None:
    server.routes["/reservations"] = Reply(201, b'{"id": "r-1", "ok": true}')

    async def scenario(executor: HttpExecutor) -> None:
        spec = {
            "method": "POST",
            "url": f"{server.url}/reservations",
            "headers": {"X-Tenant": "acme", "X-Count": 3},
            "body": {"property": "p-7", "nights": 2},
        }
        events = await outcome(executor, spec)
        assert events.types() == ["ActivityStarted", "ActivityCompleted"]
        assert events.events[-1] == ActivityCompleted(
            key="reserve", attempt=1, output={"id": "r-1", "ok": True}
        )

    run(scenario)
    (request,) = server.requests_to("/reservations")
    assert request.method == "POST"
    assert json.loads(request.body) == {"property": "p-7", "nights": 2}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["x-count"] == "3"
    assert request.headers["idempotency-key"] == f"{RUN.uid}/reserve/1"


@pytest.mark.parametrize(
    ("body", "output"),
    [(b"", None), (b"plain words", "plain words"), (b"42", 42), (b'"quoted"', "quoted")],
)
def test_an_empty_body_is_null_and_a_non_json_body_is_its_text(
    server: Server, body: bytes, output: Any
) -> None:
    server.routes["/x"] = Reply(200, body)

    async def scenario(executor: HttpExecutor) -> None:
        events = await outcome(executor, {"url": f"{server.url}/x"})
        assert events.events[-1] == ActivityCompleted(key="reserve", attempt=1, output=output)

    run(scenario)


def test_a_reissued_start_sends_the_same_idempotency_key(server: Server) -> None:
    server.routes["/pay"] = Reply(200, b"{}")
    spec = {"method": "POST", "url": f"{server.url}/pay"}

    async def scenario(executor: HttpExecutor) -> None:
        await outcome(executor, spec, attempt=2)

    run(scenario)
    run(scenario)  # a new operator process re-issuing the same attempt
    keys = [r.headers["idempotency-key"] for r in server.requests_to("/pay")]
    assert keys == [f"{RUN.uid}/reserve/2"] * 2


def test_a_duplicate_start_of_an_attempt_in_flight_is_one_call(server: Server) -> None:
    server.routes["/slow"] = Reply(200, b'"done"', delay=0.5)

    async def scenario(executor: HttpExecutor) -> None:
        first, second = Events(), Events()
        cmd = command("http", {"url": f"{server.url}/slow"})
        await executor.start(RUN, cmd, first)
        await executor.start(RUN, cmd, second)
        assert (await first.final()) == ActivityCompleted(key="reserve", attempt=1, output="done")
        assert second.events == []

    run(scenario)
    assert len(server.requests_to("/slow")) == 1


def test_a_header_set_by_the_workflow_overrides_the_idempotency_key(server: Server) -> None:
    server.routes["/pay"] = Reply(200)

    async def scenario(executor: HttpExecutor) -> None:
        spec = {"url": f"{server.url}/pay", "headers": {"idempotency-key": "order-9"}}
        await outcome(executor, spec)

    run(scenario)
    (request,) = server.requests_to("/pay")
    assert request.headers["idempotency-key"] == "order-9"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (404, False), (409, False), (408, True), (500, True), (503, True)],
)
def test_a_status_outside_2xx_is_an_http_error_the_engine_classifies(
    server: Server, status: int, retryable: bool
) -> None:
    server.routes["/x"] = Reply(status, b'{"code": "nope"}')

    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": f"{server.url}/x"})).error
        assert error["type"] == "HttpError"
        assert error["details"]["status"] == status
        assert error["details"]["body"] == {"code": "nope"}
        assert error["message"].startswith(f"{status} ")
        assert is_retryable(POLICY, StepError.reported(error, "s")) is retryable

    run(scenario)


def test_429_with_retry_after_seconds_is_retried_after_that_delay(server: Server) -> None:
    server.routes["/x"] = Reply(429, headers={"Retry-After": "7"})

    async def scenario(executor: HttpExecutor) -> None:
        failed = failure(await outcome(executor, {"url": f"{server.url}/x"}))
        assert failed.error["message"] == "429 Too Many Requests"
        assert failed.retry_after == 7.0
        assert is_retryable(POLICY, StepError.reported(failed.error, "s"))

    run(scenario)


def test_retry_after_as_an_http_date_is_seconds_from_now(server: Server) -> None:
    import time

    server.routes["/x"] = Reply(503, headers={"Retry-After": formatdate(time.time() + 120)})

    async def scenario(executor: HttpExecutor) -> None:
        failed = failure(await outcome(executor, {"url": f"{server.url}/x"}))
        assert failed.retry_after is not None
        assert 100 < failed.retry_after <= 120

    run(scenario)


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds("12", now) == 12.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now) == 30.0
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now) == 0.0
    assert retry_after_seconds("-5", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_success_codes_replace_the_2xx_default(server: Server) -> None:
    server.routes["/gone"] = Reply(404, b'{"missing": true}')
    server.routes["/ok"] = Reply(200, b"{}")

    async def scenario(executor: HttpExecutor) -> None:
        spec = {"method": "DELETE", "url": f"{server.url}/gone", "successCodes": [200, 404]}
        done = await outcome(executor, spec)
        assert done.events[-1] == ActivityCompleted(
            key="reserve", attempt=1, output={"missing": True}
        )
        spec = {"url": f"{server.url}/ok", "successCodes": [204]}
        assert failure(await outcome(executor, spec, key="other")).error["details"]["status"] == 200

    run(scenario)


def test_a_redirect_is_not_followed(server: Server) -> None:
    server.routes["/old"] = Reply(302, headers={"Location": "/new"})
    server.routes["/new"] = Reply(200, b"{}")

    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": f"{server.url}/old"})).error
        assert error["details"]["status"] == 302

    run(scenario)
    assert server.requests_to("/new") == []


def test_no_response_within_start_to_close_is_a_retryable_timeout(server: Server) -> None:
    server.routes["/slow"] = Reply(200, b"{}", delay=3)

    async def scenario(executor: HttpExecutor) -> None:
        started = asyncio.get_running_loop().time()
        spec = {"url": f"{server.url}/slow"}
        error = failure(await outcome(executor, spec, start_to_close=0.3)).error
        assert asyncio.get_running_loop().time() - started < 2
        assert error["type"] == "Timeout"
        assert error["details"] == {"kind": "startToClose"}
        assert is_retryable(POLICY, StepError.reported(error, "s"))

    run(scenario)


def test_a_refused_connection_is_a_retryable_connection_error() -> None:
    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": "http://127.0.0.1:9/x"})).error
        assert error["type"] == "ConnectionError"
        assert "127.0.0.1:9" in error["message"]
        assert is_retryable(POLICY, StepError.reported(error, "s"))

    run(scenario)


def test_a_host_that_does_not_resolve_is_a_connection_error() -> None:
    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": "http://nowhere.invalid/x"})).error
        assert error["type"] == "ConnectionError"

    run(scenario)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1:8080/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://168.63.129.16/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://service.linklocal.test/",
        "http://service.mixed.test/",
    ],
)
def test_link_local_and_metadata_destinations_are_refused_for_good(url: str) -> None:
    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": url})).error
        assert error["type"] == "ForbiddenAddress"
        assert error["details"]["nonRetryable"] is True
        assert not is_retryable(POLICY, StepError.reported(error, "s"))

    run(scenario)


def test_a_name_resolving_to_loopback_is_allowed(server: Server) -> None:
    server.routes["/x"] = Reply(200, b'"here"')
    port = server.url.rsplit(":", 1)[1]

    async def scenario(executor: HttpExecutor) -> None:
        events = await outcome(executor, {"url": f"http://api.local.test:{port}/x"})
        assert events.events[-1] == ActivityCompleted(key="reserve", attempt=1, output="here")

    run(scenario)
    (request,) = server.requests_to("/x")
    assert request.headers["host"] == f"api.local.test:{port}"


def test_the_guard_is_off_when_link_local_addresses_are_allowed() -> None:
    async def scenario(executor: HttpExecutor) -> None:
        spec = {"url": "http://service.linklocal.test/"}
        error = failure(await outcome(executor, spec, start_to_close=0.5)).error
        # The connection is attempted (whatever answers there, if anything), not refused.
        assert error["type"] != "ForbiddenAddress"
        assert "nonRetryable" not in error["details"]

    run(scenario, allow_link_local_http=True)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fd00:ec2::254",
        "fe80::1%eth0",
        "168.63.129.16",  # Azure WireServer
        "fd20:ce::254",  # Google Cloud over IPv6
        "::169.254.169.254",  # IPv4-compatible
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::ffff:0:a9fe:a9fe",  # SIIT-translated
        "64:ff9b::a9fe:a9fe",  # NAT64, well-known prefix
        "64:ff9b:1::a9fe:a9fe",  # NAT64, local-use prefix
        "2002:a9fe:a9fe::",  # 6to4
        "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254
        "64:ff9b::a83f:8110",  # NAT64 of Azure's 168.63.129.16
    ],
)
def test_metadata_and_link_local_addresses_are_forbidden_in_every_form(address: str) -> None:
    assert forbidden_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "::1",
        "::",
        "8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::",
        "2001:db8::1",
    ],
)
def test_loopback_private_and_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden_address(address)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http:///path"])
def test_a_url_that_is_not_http_is_refused_for_good(url: str) -> None:
    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": url})).error
        assert error["type"] == "InvalidRequest"
        assert not is_retryable(POLICY, StepError.reported(error, "s"))

    run(scenario)


@pytest.mark.parametrize("host", ["2852039166", "169.254.43518", "0251.0376.0251.0376", "127.1"])
def test_a_legacy_numeric_ipv4_form_is_refused_for_good(host: str) -> None:
    # inet_aton would read these as 169.254.169.254 (or 127.0.0.1); only the dotted-quad form
    # is an address the guard and the reader of the workflow see the same way.
    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": f"http://{host}/"})).error
        assert error["type"] == "InvalidRequest"
        assert "not a canonical IPv4 address" in error["message"]
        assert not is_retryable(POLICY, StepError.reported(error, "s"))

    run(scenario)


RESPONSE_BYTES = 1024 * 1024
"""The documented limit of a response body (docs/language.md: 1 MiB), written as a number."""


def test_a_response_of_exactly_the_limit_is_the_output(server: Server) -> None:
    server.routes["/full"] = Reply(200, b"x" * RESPONSE_BYTES)

    async def scenario(executor: HttpExecutor) -> None:
        final = (await outcome(executor, {"url": f"{server.url}/full"})).events[-1]
        assert isinstance(final, ActivityCompleted), final
        assert final.output == "x" * RESPONSE_BYTES

    run(scenario)


def test_a_response_over_the_limit_is_refused(server: Server) -> None:
    server.routes["/big"] = Reply(200, b"x" * (RESPONSE_BYTES + 1))

    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": f"{server.url}/big"})).error
        assert error["type"] == "ResponseTooLarge"
        assert error["details"]["limit"] == RESPONSE_BYTES
        assert not is_retryable(POLICY, StepError.reported(error, "s"))

    run(scenario)


def test_cancel_stops_the_call_and_nothing_more_is_reported(server: Server) -> None:
    server.routes["/slow"] = Reply(200, b"{}", delay=2)

    async def scenario(executor: HttpExecutor) -> None:
        events = Events()
        cmd = command("http", {"url": f"{server.url}/slow"})
        await executor.start(RUN, cmd, events)
        await events.wait_for("ActivityStarted")
        cancel = CancelActivity(key=cmd.key, kind="http", attempt=1, idempotency_key="")
        await executor.cancel(RUN, cancel)
        await asyncio.sleep(2.5)
        assert events.types() == ["ActivityStarted"]

    run(scenario)


def test_close_cancels_calls_in_flight(server: Server) -> None:
    server.routes["/slow"] = Reply(200, b"{}", delay=1)
    seen = Events()

    async def scenario(executor: HttpExecutor) -> None:
        await executor.start(RUN, command("http", {"url": f"{server.url}/slow"}), seen)
        await seen.wait_for("ActivityStarted")
        for _ in range(100):  # until the server holds the request
            if server.requests_to("/slow"):
                break
            await asyncio.sleep(0.05)
        await executor.close()
        # The loop stays up past the reply: a call close() left running would report it now
        # (leaving the cancelling to the loop's shutdown would hide that).
        await asyncio.sleep(2)
        assert seen.types() == ["ActivityStarted"]

    run(scenario)  # and closes it again, which is harmless
    assert len(server.requests_to("/slow")) == 1


def test_head_has_no_output(server: Server) -> None:
    server.routes["/h"] = Reply(200, b"ignored")

    async def scenario(executor: HttpExecutor) -> None:
        events = await outcome(executor, {"method": "HEAD", "url": f"{server.url}/h"})
        assert events.events[-1] == ActivityCompleted(key="reserve", attempt=1, output=None)

    run(scenario)


def test_a_call_echoing_its_request_sees_every_header(server: Server) -> None:
    def echo(request: Request) -> Reply:
        return Reply(200, json.dumps(request.headers).encode())

    server.routes["/echo"] = echo

    async def scenario(executor: HttpExecutor) -> None:
        spec = {"url": f"{server.url}/echo", "headers": {"X-Flag": True, "X-Obj": {"a": 1}}}
        events = await outcome(executor, spec)
        output = events.events[-1].output  # type: ignore[attr-defined]
        assert output["x-flag"] == "true"
        assert output["x-obj"] == '{"a":1}'
        assert output["user-agent"] == "baton"

    run(scenario)


@pytest.mark.parametrize(
    "headers", [{"X-Name": "café"}, {"Bad Header": "x"}, {"X-Split": "a\r\nX-Injected: 1"}]
)
def test_a_header_the_request_cannot_carry_is_refused_for_good(
    server: Server, headers: dict[str, str]
) -> None:
    server.routes["/x"] = Reply(200)

    async def scenario(executor: HttpExecutor) -> None:
        error = failure(await outcome(executor, {"url": f"{server.url}/x", "headers": headers}))
        assert error.error["type"] == "InvalidRequest"
        assert not is_retryable(POLICY, StepError.reported(error.error, "s"))

    run(scenario)
    assert server.requests_to("/x") == []
