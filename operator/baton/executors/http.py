"""HTTP activities, and the one HTTP code path of the operator (worker dispatch uses it too).

This module owns the operator's HTTP clients (`http_client`: one connection pool each, one for
HTTP activities, one for worker dispatch), the address guard that keeps activities away from
link-local and cloud-metadata addresses, secret headers, and the mapping of responses and
transport failures to engine errors:

| what happened | error type | retried by default |
|---|---|---|
| status outside `successCodes` (default 2xx) | `HttpError`, `details.status` | not 4xx* |
| no answer within `startToClose` (or the default) | `Timeout`, `details.kind: startToClose` | yes |
| refused connection, reset, DNS failure | `ConnectionError` | yes |
| link-local or metadata address | `ForbiddenAddress` (`details.nonRetryable`) | never |
| URL that is not http(s) | `InvalidRequest` (`details.nonRetryable`) | never |
| body over `MAX_RESPONSE_BYTES` | `ResponseTooLarge` (`details.nonRetryable`) | never |
| Secret or key of a header missing | `SecretUnavailable` | yes (it may be created) |
| Secret without `baton.dev/workflow-secret=true` | `SecretNotAllowed` | never |
| name that is not a Kubernetes name (`../x`) | `InvalidName` | never |

(*) 408 and 429 are retried; other 4xx are not.

The client is aiohttp's (the Kubernetes client's too: one HTTP stack in the operator). The
guard sits in its connector, where TCP connections are opened: its resolver (`GuardedResolver`)
resolves the host and refuses when any address is forbidden, and the connector connects only to
the addresses the resolver returned; a literal address in the URL skips resolution, so the
connector's socket factory checks every address it opens a socket to as well. Checking at
connect time (rather than resolving once before the request) leaves no window for a DNS answer
that changes between check and use, and covers every connection a request opens. Redirects are
not followed: a `3xx` is an `HttpError` unless listed in `successCodes`, so a header read from a
Secret never travels to a host the workflow did not name. No proxy is taken from the environment
(the guard must see the real destination); TLS trusts `SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
else the certifi bundle.

A call is sent only once it holds a slot of the executor's `CallLimits` (baton.executors.limits:
in all, per namespace, per run); it is acknowledged (ActivityStarted) then, so its startToClose
counts from the send and a call waiting for a slot holds no connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import certifi
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from baton.engine.commands import CancelActivity, StartActivity
from baton.engine.events import ActivityStarted
from baton.executors.attempts import (
    DETAIL_CHARS,
    ActivityError,
    AttemptId,
    InFlight,
    parse_output,
    run_attempt,
)
from baton.executors.base import Report
from baton.executors.limits import CallLimits
from baton.executors.secrets import secret_text
from baton.expr import as_text
from baton.settings import OperatorSettings
from baton.store.kube import Kube
from baton.store.ref import RunRef

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1024 * 1024
"""Largest response body read: an output must fit in a ConfigMap (etcd's limit is 1.5 MiB)."""

USER_AGENT = "baton"

METADATA_HOSTS: frozenset[str] = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
"""Names of cloud metadata services, refused before they are even resolved."""

METADATA_ADDRESSES: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud (legacy)
        ipaddress.ip_address("168.63.129.16"),  # Azure WireServer (platform agent, DNS, health)
        ipaddress.ip_address("fd20:ce::254"),  # Google Cloud over IPv6
    }
)
"""Metadata addresses outside the link-local ranges, which are refused as a whole."""

BodyReader = Callable[[aiohttp.ClientResponse, str], Awaitable[bytes]]
"""Reads a response's body (given the response and `METHOD URL` for messages)."""

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name (or literal address) and port to IP addresses, in preference order."""


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses of `host` from the system resolver, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class ForbiddenAddressError(Exception):
    """A request would reach a link-local or cloud-metadata address."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        where = host if host == address else f"{host} ({address})"
        super().__init__(
            f"refused to connect to {where}: a link-local or cloud metadata address "
            "(the operator's allowLinkLocalHttp setting is off)"
        )


NAT64_PREFIXES = (
    ipaddress.ip_network("64:ff9b::/96"),  # RFC 6052, well-known
    ipaddress.ip_network("64:ff9b:1::/48"),  # RFC 8215, local use (commonly a /96 inside it)
)
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291, deprecated but still routed by some
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and may reach through a translator or tunnel:
    IPv4-mapped, IPv4-compatible, SIIT-translated, NAT64, 6to4 and Teredo forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in prefix for prefix in NAT64_PREFIXES) or ip in IPV4_TRANSLATED:
        return low
    if ip in IPV4_COMPATIBLE and int(ip) > 1:  # not :: nor ::1
        return low
    return None


def forbidden_address(address: str) -> bool:
    """True for link-local (169.254.0.0/16, fe80::/10) and cloud-metadata addresses, and for
    IPv6 addresses that embed one (see `embedded_ipv4`). Loopback and private ranges are
    allowed."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.is_link_local or ip in METADATA_ADDRESSES:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        return inner is not None and (inner.is_link_local or inner in METADATA_ADDRESSES)
    return False


def check_destination(host: str, addresses: list[str]) -> None:
    """Raise ForbiddenAddressError when `host` or any of its addresses is forbidden.

    Any rather than all: a name with one metadata address among public ones is an attack, not
    an accident, and connecting to "the others" would depend on their order."""
    name = host.lower().rstrip(".")
    if name in METADATA_HOSTS:
        raise ForbiddenAddressError(host, host)
    for address in [host, *addresses]:
        if forbidden_address(address):
            raise ForbiddenAddressError(host, address)


class GuardedResolver(AbstractResolver):
    """The connector's resolver: resolves with `resolve` and returns the addresses only when
    `check_destination` accepts them all (the connector connects to nothing else)."""

    def __init__(self, resolve: Resolver, *, allow_link_local: bool) -> None:
        self._resolve = resolve
        self._allow_link_local = allow_link_local

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not self._allow_link_local and host.lower().rstrip(".") in METADATA_HOSTS:
            raise ForbiddenAddressError(host, host)
        addresses = await self._resolve(host, port)
        if not addresses:
            # An OSError, as a failed lookup: the connector reports it as a DNS error.
            raise OSError(f"{host} has no address")
        if not self._allow_link_local:
            check_destination(host, addresses)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release: `resolve` holds no resources of its own."""


def guarded_socket(addr_info: AddrInfoType) -> socket.socket:
    """The connector's socket factory: a socket for an address the guard accepts. Names were
    checked by `GuardedResolver`; a literal address in the URL reaches only this check."""
    family, type_, proto, _name, sockaddr = addr_info
    address = str(sockaddr[0])
    if forbidden_address(address):
        raise ForbiddenAddressError(address, address)
    return socket.socket(family=family, type=type_, proto=proto)


def tls_context() -> ssl.SSLContext:
    """Verifying TLS: the CA bundle of `SSL_CERT_FILE` or `SSL_CERT_DIR` when set (a private CA
    for in-cluster services), else certifi's."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        context = ssl.create_default_context(cafile=cafile)
    elif capath := os.environ.get("SSL_CERT_DIR"):
        context = ssl.create_default_context(capath=capath)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(["http/1.1"])
    return context


KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept for reuse: shorter than most servers' own idle timeout
(5 s in Node.js, 60 s in nginx), so a reused connection is rarely one the server just closed."""


def http_client(
    settings: OperatorSettings, resolve: Resolver | None = None, *, max_connections: int
) -> aiohttp.ClientSession:
    """A client over its own pool of `max_connections`: the address guard, no proxy from the
    environment (the guard must see the real destination), no cookies kept between calls, no
    client-wide timeout (each request sets its own). Redirects are refused per request."""
    allow = settings.allow_link_local_http
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_SECONDS,
        resolver=GuardedResolver(resolve or resolve_host, allow_link_local=allow),
        socket_factory=None if allow else guarded_socket,
        ssl=tls_context(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(),
        headers={"User-Agent": USER_AGENT},
    )


TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name (RFC 9110 `token`)."""

FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""A header value that can be sent: visible ASCII, spaces and tabs (no CR, LF or other control
character that would end the header or start another; no bytes outside ASCII)."""


def check_headers(headers: Mapping[str, str], where: str) -> None:
    """`InvalidRequest` (never retried: it will not improve) for a header the request cannot
    carry."""
    for name, value in headers.items():
        if not TOKEN.fullmatch(name):
            reason, what = "InvalidHeaderName", f"header name {name!r} is not a token"
        elif not FIELD_VALUE.fullmatch(value):
            reason, what = "InvalidHeaderValue", f"the value of header {name!r} cannot be sent"
        else:
            continue
        raise ActivityError(
            "InvalidRequest",
            f"{where}: {what} (visible ASCII only, no line breaks)",
            {"reason": reason},
            non_retryable=True,
        )


@dataclass(frozen=True)
class HttpResponse:
    """A response read in full (up to MAX_RESPONSE_BYTES)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    """Read case-insensitively (`headers.get("retry-after")`)."""
    content: bytes
    encoding: str = "utf-8"

    @property
    def text(self) -> str:
        """The body decoded by its charset (UTF-8 when it names none or an unknown one)."""
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def output(self) -> Any:
        """The body as an activity output: its JSON, else its text; empty → None."""
        return parse_output(self.text)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds from `now` that a `Retry-After` header asks to wait: delay-seconds or an
    HTTP date; None when absent or unreadable, never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a date without a zone is read as such.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def response_error(response: HttpResponse, now: float) -> ActivityError:
    """The `HttpError` of a response that is not a success: `<status> <reason>`, the status
    (what the engine's retry rule reads), the body and `Retry-After`. The body is kept whole
    here: `run_attempt` masks secrets in it before cutting it to size."""
    details: dict[str, Any] = {"status": response.status}
    body = response.output()
    if body is not None:
        # A short JSON body stays JSON (its fields can be read); a long one becomes its text.
        small = isinstance(body, str) or len(response.content) <= DETAIL_CHARS
        details["body"] = body if small else response.text
    message = f"{response.status} {response.reason}".strip()
    retry_after = retry_after_seconds(response.headers.get("retry-after"), now)
    return ActivityError("HttpError", message, details, retry_after=retry_after)


def _is_success(status: int, success_codes: Any) -> bool:
    if isinstance(success_codes, list) and success_codes:
        return status in success_codes
    return 200 <= status < 300


class HttpExecutor:
    """Performs `http` activities over its client (whose `send` worker dispatch uses too, over
    a client of its own).

    `start` runs the call as a task (a duplicate start of an attempt in flight is a no-op),
    which waits for a slot of `limits` before it is sent; `cancel` cancels that task; `close`
    cancels them all and closes the client. `resolve` replaces the system resolver (tests
    point host names at chosen addresses)."""

    kind = "http"

    def __init__(
        self, kube: Kube, settings: OperatorSettings, *, resolve: Resolver | None = None
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.resolve = resolve
        self.client = http_client(settings, resolve, max_connections=settings.http_max_connections)
        self.limits = CallLimits(
            settings.http_max_connections,
            per_namespace=settings.http_calls_per_namespace,
            per_run=settings.http_calls_per_run,
        )
        self._inflight = InFlight()

    async def start(self, run: RunRef, command: StartActivity, report: Report) -> None:
        """Begin the call; ActivityStarted once it holds a slot, then ActivityCompleted or
        ActivityFailed via `report`."""
        secrets: list[str] = []

        async def call() -> Any:
            # Per run tree, as worker pools share their slots: a parent fanning out to child
            # runs gets no more calls than one run.
            async with self.limits.slot(run.namespace, run.root):
                await report(ActivityStarted(key=command.key, attempt=command.attempt))
                return await self._call(run, command, secrets)

        async def attempt() -> None:
            await run_attempt(command, report, call, secrets=lambda: secrets, acknowledge=False)

        self._inflight.spawn(AttemptId.of(run, command), attempt)

    async def cancel(self, run: RunRef, command: CancelActivity) -> None:
        """Cancel the call of that attempt if it is still in flight."""
        await self._inflight.cancel(AttemptId.of(run, command))

    async def close(self) -> None:
        """Cancel every call in flight and close the shared client."""
        await self._inflight.close()
        await self.client.close()

    async def _call(self, run: RunRef, command: StartActivity, secrets: list[str]) -> Any:
        spec = command.spec
        method = str(spec.get("method") or "GET").upper()
        headers = await self._headers(run, spec.get("headers") or {}, secrets)
        if not any(name.lower() == "idempotency-key" for name in headers):
            # A header the workflow sets itself wins: a key without the attempt number lets
            # the server deduplicate across retries too.
            headers["Idempotency-Key"] = command.idempotency_key
        log.debug("http %s for %s", method, command.idempotency_key)
        timeout, limit = command.start_to_close, "the startToClose timeout"
        if timeout is None:
            timeout = self.settings.http_default_timeout
            limit = "the operator's default timeout (the step sets no timeout.startToClose)"
        response = await self.send(
            method,
            str(spec.get("url") or ""),
            headers=headers,
            body=spec.get("body"),
            timeout=timeout,
            limit=limit,
        )
        if not _is_success(response.status, spec.get("successCodes")):
            raise response_error(response, time.time())
        return None if method == "HEAD" else response.output()

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Any,
        timeout: float | None,
        limit: str = "the startToClose timeout",
        read: BodyReader | None = None,
        client: aiohttp.ClientSession | None = None,
    ) -> HttpResponse:
        """One request through the guard, its body read in full; transport failures raise
        ActivityError (`Timeout`, `ConnectionError`, `ForbiddenAddress`, ...). Statuses are the
        caller's to judge. `read` replaces the reading of the body (a worker's heartbeat stream);
        the `timeout` covers it too (`limit` names it in the error). `client` replaces the
        executor's own (worker dispatch has its pool); a slot of the caller's limits is the
        caller's to hold."""
        target = request_url(url)
        where = f"{method} {target.with_query(None).with_fragment(None)}"
        check_headers(headers, where)
        sent = dict(headers)
        data = None
        if body is not None:
            # As JSON, compact and UTF-8; a Content-Type the workflow set itself is kept.
            data = json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            if not any(name.lower() == "content-type" for name in sent):
                sent["Content-Type"] = "application/json"
        try:
            async with asyncio.timeout(timeout):
                async with (client or self.client).request(
                    method, target, headers=sent, data=data, allow_redirects=False
                ) as response:
                    content = await (read or read_capped)(response, where)
                    return HttpResponse(
                        status=response.status,
                        reason=response.reason or "",
                        headers=response.headers,
                        content=content,
                        encoding=response.charset or "utf-8",
                    )
        except ForbiddenAddressError as exc:
            raise ActivityError(
                "ForbiddenAddress",
                str(exc),
                {"host": exc.host, "address": exc.address},
                non_retryable=True,
            ) from None
        except aiohttp.InvalidURL as exc:
            # A host aiohttp will not connect to as written (`http://127.1/`).
            raise ActivityError(
                "InvalidRequest",
                f"{where}: {exc}",
                {"reason": type(exc).__name__},
                non_retryable=True,
            ) from None
        except TimeoutError:
            raise ActivityError(
                "Timeout",
                f"{where}: no response within {limit} of {timeout}s",
                {"kind": "startToClose"},
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ActivityError(
                "ConnectionError",
                f"{where}: {exc or type(exc).__name__}",
                {"reason": type(exc).__name__},
            ) from None

    async def _headers(
        self, run: RunRef, spec: Mapping[str, Any], secrets: list[str]
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in spec.items():
            if isinstance(value, Mapping) and "secretKeyRef" in value:
                secret = await secret_text(self.kube, run.namespace, value["secretKeyRef"])
                secrets.append(secret)
                headers[name] = secret
            elif value is not None:
                headers[name] = as_text(value)
        return headers


def request_url(url: str) -> URL:
    """The URL of a request; `InvalidRequest` (never retried) for one that is not http(s)."""
    try:
        target = URL(url)
    except (ValueError, TypeError) as exc:
        raise ActivityError(
            "InvalidRequest", f"invalid URL {url!r}: {exc}", non_retryable=True
        ) from None
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise ActivityError("InvalidRequest", f"not an http(s) URL: {url!r}", non_retryable=True)
    return target


async def read_capped(response: aiohttp.ClientResponse, where: str) -> bytes:
    """The body in full; `ResponseTooLarge` past MAX_RESPONSE_BYTES."""
    content = bytearray()
    async for chunk in response.content.iter_any():
        content += chunk
        if len(content) > MAX_RESPONSE_BYTES:
            raise ActivityError(
                "ResponseTooLarge",
                f"{where}: response body over {MAX_RESPONSE_BYTES} bytes",
                {"status": response.status, "limit": MAX_RESPONSE_BYTES},
                non_retryable=True,
            )
    return bytes(content)
