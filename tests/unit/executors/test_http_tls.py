"""HTTPS from HTTP activities: the server's certificate is checked against `SSL_CERT_FILE` when
it is set (a private CA of in-cluster services), else against the public CAs, never skipped."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from executorkit import RUN, Events, Reply, Server, command, offline_kube

from baton.engine.events import ActivityCompleted, ActivityFailed
from baton.executors.http import HttpExecutor
from baton.settings import OperatorSettings

pytestmark = pytest.mark.timeout(60)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA (ca.pem) and a certificate it signed for 127.0.0.1 (server.pem, .key)."""
    where = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=baton test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=where,
    )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=where,
    )  # fmt: skip
    (where / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        cwd=where,
    )  # fmt: skip
    return where


@pytest.fixture
def https_server(certificates: Path) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    server = Server(tls=context)
    server.routes["/x"] = Reply(200, b'"secure"')
    server.start()
    yield server
    server.stop()


def _final(url: str) -> object:
    async def main() -> object:
        async with offline_kube() as kube:
            executor = HttpExecutor(kube, OperatorSettings())
            try:
                events = Events()
                await executor.start(RUN, command("http", {"url": url}), events)
                return await events.final()
            finally:
                await executor.close()

    return asyncio.run(main())


def test_a_server_signed_by_the_ca_in_ssl_cert_file_is_trusted(
    https_server: Server, certificates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    final = _final(f"{https_server.url}/x")
    assert final == ActivityCompleted(key="reserve", attempt=1, output="secure")


def test_a_server_signed_by_an_unknown_ca_is_a_connection_error_and_gets_nothing(
    https_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    final = _final(f"{https_server.url}/x")
    assert isinstance(final, ActivityFailed)
    assert final.error["type"] == "ConnectionError"
    assert "certificate" in final.error["message"].lower()
    assert https_server.requests_to("/x") == []
