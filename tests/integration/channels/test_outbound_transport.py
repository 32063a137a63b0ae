"""GuardedTransport over real sockets: a local HTTP(S) server stands in for a target.

"hooks.example.test" exists in no DNS (``.test`` is reserved), so a request that
arrives proves the HTTP stack connected to the address the guard resolved and checked,
never resolving the name itself.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidings.channels.base import TargetRefused
from tidings.channels.outbound import GuardedTransport, Resolver

if TYPE_CHECKING:
    # imported by pytest_plugins below, before anything else imports it (assertion rewriting)
    from tests.fixtures.webhook_receiver import ReceiverFactory, WebhookReceiver

pytest_plugins = ["tests.fixtures.webhook_receiver"]

NAME = "hooks.example.test"
PUBLIC_IP = "93.184.216.34"


class CountingResolver:
    """A fake DNS: answers from a list (the last one repeats) and counts the questions."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def _client(
    *, allow_private: bool, resolver: Resolver, inner: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    transport = GuardedTransport(allow_private=allow_private, resolver=resolver, inner=inner)
    return httpx.AsyncClient(transport=transport, timeout=5.0)


@pytest.fixture
def receiver(webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    return webhook_receiver


def _url(receiver: WebhookReceiver, path: str = "/hook", scheme: str = "http") -> str:
    return f"{scheme}://{NAME}:{receiver.port}{path}"


async def test_request_reaches_the_resolved_address_with_the_original_host(
    receiver: WebhookReceiver,
) -> None:
    resolver = CountingResolver(["127.0.0.1"])
    async with _client(allow_private=True, resolver=resolver) as client:
        response = await client.post(_url(receiver, "/hook?x=1"), content=b'{"a":1}')
    assert response.status_code == 200
    assert str(response.request.url) == _url(receiver, "/hook?x=1")  # callers see the name
    (received,) = receiver.requests
    assert received.header("host") == f"{NAME}:{receiver.port}"
    assert received.path == "/hook?x=1"
    assert received.body == b'{"a":1}'
    assert received.client[0] == "127.0.0.1"
    assert resolver.calls == [(NAME, receiver.port)]


async def test_private_address_is_refused_without_the_flag(receiver: WebhookReceiver) -> None:
    resolver = CountingResolver(["127.0.0.1"])
    async with _client(allow_private=False, resolver=resolver) as client:
        with pytest.raises(TargetRefused, match=r"127\.0\.0\.1"):
            await client.post(_url(receiver, scheme="https"), content=b"{}")
        with pytest.raises(TargetRefused, match="https"):
            await client.post(_url(receiver), content=b"{}")
    assert receiver.requests == []
    assert receiver.connections == 0


async def test_dns_rebinding_cannot_redirect_the_connection(receiver: WebhookReceiver) -> None:
    # First answer passes the check; every later answer points at the metadata service.
    resolver = CountingResolver(["127.0.0.1"], ["169.254.169.254"])
    async with _client(allow_private=True, resolver=resolver) as client:
        response = await client.post(_url(receiver), content=b"first")
        assert response.status_code == 200
        assert len(resolver.calls) == 1  # the HTTP stack did not resolve again
        with pytest.raises(TargetRefused, match=r"169\.254\.169\.254"):
            await client.post(_url(receiver), content=b"second")
        assert len(resolver.calls) == 2  # once per request
    (received,) = receiver.requests
    assert received.body == b"first"
    assert received.client[0] == "127.0.0.1"


async def test_one_forbidden_answer_refuses_the_name(receiver: WebhookReceiver) -> None:
    resolver = CountingResolver([PUBLIC_IP, "169.254.169.254"])
    async with _client(allow_private=True, resolver=resolver) as client:
        with pytest.raises(TargetRefused, match="metadata"):
            await client.post(_url(receiver), content=b"{}")
    assert receiver.connections == 0


async def test_metadata_name_is_refused_even_with_the_flag(receiver: WebhookReceiver) -> None:
    resolver = CountingResolver(["169.254.169.254"])
    async with _client(allow_private=True, resolver=resolver) as client:
        with pytest.raises(TargetRefused, match="metadata"):
            await client.get("http://metadata.google.internal/computeMetadata/v1/")
    assert resolver.calls == [("metadata.google.internal", 80)]


async def test_next_checked_address_is_tried_when_one_refuses_connections(
    receiver: WebhookReceiver,
) -> None:
    # 127.0.0.2 is loopback too, but nothing listens there on this port.
    resolver = CountingResolver(["127.0.0.2", "127.0.0.1"])
    async with _client(allow_private=True, resolver=resolver) as client:
        response = await client.post(_url(receiver), content=b"{}")
    assert response.status_code == 200
    assert receiver.requests[0].client[0] == "127.0.0.1"


async def test_kept_alive_connection_is_reused(receiver: WebhookReceiver) -> None:
    resolver = CountingResolver(["127.0.0.1"])
    async with _client(allow_private=True, resolver=resolver) as client:
        for _ in range(3):
            assert (await client.post(_url(receiver), content=b"{}")).status_code == 200
    assert len(receiver.requests) == 3
    assert receiver.connections == 1


# https: the certificate names hooks.example.test only, not 127.0.0.1. The handshake
# succeeds only if SNI and certificate checking use the name while the socket goes to
# the address.


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(
    tmp_path: Path, webhook_receiver_factory: ReceiverFactory
) -> tuple[WebhookReceiver, ssl.SSLContext]:
    cert, key = _certificate(tmp_path, NAME)
    receiver = webhook_receiver_factory(tls=(cert, key))
    return receiver, ssl.create_default_context(cafile=str(cert))


@pytest.fixture
async def trusting_inner(
    tls_receiver: tuple[WebhookReceiver, ssl.SSLContext],
) -> AsyncIterator[httpx.AsyncHTTPTransport]:
    transport = httpx.AsyncHTTPTransport(verify=tls_receiver[1])
    yield transport
    await transport.aclose()


async def test_https_uses_the_name_for_sni_and_certificate(
    tls_receiver: tuple[WebhookReceiver, ssl.SSLContext],
    trusting_inner: httpx.AsyncHTTPTransport,
) -> None:
    receiver, _ = tls_receiver
    resolver = CountingResolver(["127.0.0.1"])
    transport = GuardedTransport(allow_private=True, resolver=resolver, inner=trusting_inner)
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
        response = await client.post(_url(receiver, scheme="https"), content=b"{}")
    assert response.status_code == 200
    (received,) = receiver.requests
    assert received.server_name == NAME
    assert received.header("host") == f"{NAME}:{receiver.port}"
    assert received.client[0] == "127.0.0.1"
    assert resolver.calls == [(NAME, receiver.port)]


async def test_https_certificate_for_another_name_is_rejected(
    tls_receiver: tuple[WebhookReceiver, ssl.SSLContext],
    trusting_inner: httpx.AsyncHTTPTransport,
) -> None:
    receiver, _ = tls_receiver
    # The same server under another name: its certificate does not cover that name.
    resolver = CountingResolver(["127.0.0.1"])
    transport = GuardedTransport(allow_private=True, resolver=resolver, inner=trusting_inner)
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|hostname"):
            await client.post(f"https://other.example.test:{receiver.port}/hook", content=b"{}")
        # and the bare address is not what the certificate names either
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|IP address"):
            await client.post(f"https://127.0.0.1:{receiver.port}/hook", content=b"{}")
    assert receiver.requests == []
    # the name went out as SNI; a bare address sends none
    assert receiver.server_names == ["other.example.test", None]
