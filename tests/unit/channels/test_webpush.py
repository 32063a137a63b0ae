from __future__ import annotations

import base64
import email.utils
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import http_ece  # type: ignore[import-untyped]
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    PushSubscription,
    RetryableSendError,
    SendResult,
    TargetRefused,
)
from tidings.channels.webpush import (
    MAX_PLAINTEXT_BYTES,
    VAPID_MIN_REMAINING_SECONDS,
    WebPushProvider,
    build_payload,
    encrypt_payload,
    endpoint_origin,
    generate_vapid_private_key,
    load_vapid_private_key,
    parse_retry_after,
    vapid_public_key,
)
from tidings.config import ConfigError

ENDPOINT = "https://push.example.net/wpush/v2/abc"
NOW = 1_750_000_000.0
Handler = Callable[[httpx.Request], httpx.Response]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class Browser:
    """The receiving end of a subscription, to decrypt what the provider sends."""

    def __init__(self, endpoint: str = ENDPOINT) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = bytes(range(16))
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = PushSubscription(endpoint, b64url(point), b64url(self.auth))

    def decrypt(self, body: bytes) -> bytes:
        plaintext: bytes = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return plaintext


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_message(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": "del-1",
        "tenant": "acme",
        "channel": "push",
        "target": ENDPOINT,
        "category": "application",
        "priority": "normal",
        "title": "Interview tomorrow",
        "body": "10:00 with Ann",
        "url": "https://app.example.com/n/1",
        "push": Browser().subscription,
        "data": {"notification_id": "n-1"},
    }
    values.update(overrides)
    return OutboundMessage(**values)


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[[Handler], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def make_provider(client: httpx.AsyncClient, **overrides: Any) -> WebPushProvider:
    values: dict[str, Any] = {
        "private_key": generate_vapid_private_key(),
        "subject": "mailto:ops@acme.example",
        "client": client,
        "clock": Clock(),
    }
    values.update(overrides)
    return WebPushProvider(**values)


def decode_payload(payload: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(payload.decode("utf-8"))  # strict: a cut char fails
    return decoded


# -- payload --


def test_payload_fields() -> None:
    payload = decode_payload(build_payload(make_message(priority="high")))

    assert payload == {
        "title": "Interview tomorrow",
        "body": "10:00 with Ann",
        "url": "https://app.example.com/n/1",
        "notification_id": "n-1",
        "category": "application",
        "priority": "high",
        "tag": "n-1",
    }


@pytest.mark.parametrize(
    ("data", "tag"),
    [
        pytest.param({"notification_id": "n-1", "tag": "thread-7"}, "thread-7", id="explicit"),
        pytest.param({"notification_id": "n-1", "tag": ""}, "n-1", id="empty-tag"),
        pytest.param({}, None, id="no-id"),
    ],
)
def test_payload_tag(data: dict[str, Any], tag: str | None) -> None:
    assert decode_payload(build_payload(make_message(data=data)))["tag"] == tag


def test_long_body_is_trimmed_to_the_limit() -> None:
    body = "".join(f"word{n} " for n in range(2000))  # about 13 kB

    raw = build_payload(make_message(body=body))
    payload = decode_payload(raw)

    assert MAX_PLAINTEXT_BYTES - 4 < len(raw) <= MAX_PLAINTEXT_BYTES
    assert payload["body"].endswith("\u2026")
    assert body.startswith(payload["body"][:-1])
    assert payload["title"] == "Interview tomorrow"


@pytest.mark.parametrize("offset", range(4))
@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_multibyte_characters_are_never_cut(char: str, offset: int) -> None:
    body = "x" * offset + char * 5000

    raw = build_payload(make_message(body=body))
    payload = decode_payload(raw)

    # the next character would have added up to four bytes
    assert MAX_PLAINTEXT_BYTES - 4 < len(raw) <= MAX_PLAINTEXT_BYTES
    assert body.startswith(payload["body"][:-1])


def test_json_escapes_count_toward_the_limit() -> None:
    body = '"\\\n\x01' * 3000  # 2, 2, 2 and 6 bytes once escaped

    raw = build_payload(make_message(body=body))

    assert len(raw) <= MAX_PLAINTEXT_BYTES
    assert body.startswith(decode_payload(raw)["body"][:-1])


def test_huge_title_is_trimmed_after_the_body() -> None:
    title = "Ü" * 10_000

    raw = build_payload(make_message(title=title, body="short"))
    payload = decode_payload(raw)

    assert len(raw) <= MAX_PLAINTEXT_BYTES
    assert payload["body"] == ""
    assert payload["title"].endswith("\u2026")
    assert title.startswith(payload["title"][:-1])
    assert len(payload["title"]) > 1000


def test_payload_that_cannot_fit_is_permanent() -> None:
    message = make_message(url="https://app.example.com/" + "a" * 5000)

    with pytest.raises(PermanentSendError) as caught:
        build_payload(message)

    assert caught.value.code == "payload_too_large"


def test_lone_surrogates_do_not_break_encoding() -> None:
    raw = build_payload(make_message(body="bad \ud800 half"))

    assert decode_payload(raw)["body"] == "bad ? half"


def test_encryption_round_trip_uses_fresh_keys() -> None:
    browser = Browser()
    plaintext = build_payload(make_message())

    first = encrypt_payload(plaintext, browser.subscription)
    second = encrypt_payload(plaintext, browser.subscription)

    assert browser.decrypt(first) == browser.decrypt(second) == plaintext
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # the server's ephemeral public key
    assert int.from_bytes(first[16:20], "big") == 4096


def test_a_full_payload_fills_exactly_one_record() -> None:
    browser = Browser()
    plaintext = build_payload(make_message(body="x" * 10_000))

    body = encrypt_payload(plaintext, browser.subscription)

    assert len(plaintext) == MAX_PLAINTEXT_BYTES
    assert len(body) == 4096
    assert browser.decrypt(body) == plaintext


# -- keys --


def test_generated_key_round_trips() -> None:
    private = generate_vapid_private_key()

    key = load_vapid_private_key(private)
    public = vapid_public_key(private)

    assert "=" not in private and len(unb64url(private)) == 32
    assert key.private_numbers().private_value == int.from_bytes(unb64url(private), "big")
    point = unb64url(public)
    assert len(point) == 65 and point[0] == 4
    assert vapid_public_key(key) == public


@pytest.mark.parametrize("escaped", [False, True], ids=["pem", "pem-escaped-newlines"])
def test_pem_key_loads(escaped: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    if escaped:
        pem = pem.replace("\n", "\\n")

    loaded = load_vapid_private_key(pem)

    assert loaded.private_numbers() == key.private_numbers()


def _pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("not a key at all!", id="garbage"),
        pytest.param(b64url(b"\x01" * 31), id="31-bytes"),
        pytest.param(b64url(b"\x00" * 32), id="zero-scalar"),
        pytest.param(b64url(b"\xff" * 32), id="scalar-above-order"),
        pytest.param("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", id="bad-pem"),
        pytest.param(_pem(ec.generate_private_key(ec.SECP384R1())), id="p384"),
        pytest.param(_pem(rsa.generate_private_key(65537, 2048)), id="rsa"),
    ],
)
def test_bad_keys_raise_value_error(value: str) -> None:
    with pytest.raises(ValueError, match="VAPID private key"):
        load_vapid_private_key(value)


async def test_provider_refuses_bad_configuration(
    client_factory: Callable[[Handler], httpx.AsyncClient],
) -> None:
    client = client_factory(lambda request: httpx.Response(201))

    with pytest.raises(ConfigError, match="TIDINGS_VAPID_PRIVATE_KEY"):
        make_provider(client, private_key="nope")
    with pytest.raises(ConfigError, match="TIDINGS_VAPID_SUBJECT"):
        make_provider(client, subject="ops@acme.example")


# -- VAPID --


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"),
        ("https://push.example:443/x", "https://push.example"),
        ("https://push.example:8443/x?y=1", "https://push.example:8443"),
        ("http://127.0.0.1:8080/push/1", "http://127.0.0.1:8080"),
        ("http://push.example:80/x", "http://push.example"),
        ("HTTPS://Updates.Push.Example.COM/wpush", "https://updates.push.example.com"),
        ("https://[::1]:8443/push", "https://[::1]:8443"),
        ("https://bücher.example/push", "https://xn--bcher-kva.example"),
    ],
)
def test_endpoint_origin(endpoint: str, origin: str) -> None:
    assert endpoint_origin(endpoint) == origin


@pytest.mark.parametrize("endpoint", ["ftp://push.example/x", "/relative/path", "https://"])
def test_endpoint_origin_refuses_non_http(endpoint: str) -> None:
    with pytest.raises(ValueError, match="push endpoint"):
        endpoint_origin(endpoint)


async def test_vapid_claims(client_factory: Callable[[Handler], httpx.AsyncClient]) -> None:
    provider = make_provider(client_factory(lambda request: httpx.Response(201)))

    header = provider.authorization("https://push.example.net")

    scheme, params = header.split(" ", 1)
    values = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid"
    assert values["k"] == provider.public_key
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(values["k"]))
    claims = jwt.decode(
        values["t"],
        public,
        algorithms=["ES256"],
        audience="https://push.example.net",
        options={"verify_exp": False},
    )
    assert jwt.get_unverified_header(values["t"]) == {"alg": "ES256", "typ": "JWT"}
    assert claims["sub"] == "mailto:ops@acme.example"
    assert NOW + 11 * 3600 < claims["exp"] <= NOW + 12 * 3600


async def test_vapid_header_is_cached_per_audience(
    client_factory: Callable[[Handler], httpx.AsyncClient],
) -> None:
    clock = Clock()
    provider = make_provider(client_factory(lambda request: httpx.Response(201)), clock=clock)

    first = provider.authorization("https://a.example")
    other = provider.authorization("https://b.example")
    clock.now = NOW + 10 * 3600
    later = provider.authorization("https://a.example")
    clock.now = NOW + 12 * 3600 - VAPID_MIN_REMAINING_SECONDS
    renewed = provider.authorization("https://a.example")

    assert later == first
    assert other != first
    assert renewed != first
    token = renewed.split("t=", 1)[1].split(",", 1)[0]
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert clock.now + 11 * 3600 < exp <= clock.now + 12 * 3600


async def test_sends_reuse_the_signed_header(
    client_factory: Callable[[Handler], httpx.AsyncClient],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201)

    provider = make_provider(client_factory(handler))

    await provider.send(make_message())
    await provider.send(make_message())

    assert seen[0].headers["Authorization"] == seen[1].headers["Authorization"]
    assert seen[0].content != seen[1].content


# -- the request --


@pytest.mark.parametrize(
    ("priority", "urgency"),
    [("low", "low"), ("normal", "normal"), ("high", "high"), ("urgent", "high"), ("odd", "normal")],
)
async def test_request_headers_and_body(
    client_factory: Callable[[Handler], httpx.AsyncClient], priority: str, urgency: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, headers={"Location": "https://push.example.net/m/1"})

    browser = Browser()
    message = make_message(priority=priority, push=browser.subscription)
    provider = make_provider(client_factory(handler), ttl=600)

    result = await provider.send(message)

    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == ENDPOINT
    assert request.headers["TTL"] == "600"
    assert request.headers["Urgency"] == urgency
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert request.headers["Content-Type"] == "application/octet-stream"
    assert request.headers["Authorization"].startswith("vapid t=")
    assert browser.decrypt(request.content) == build_payload(message)
    assert result == SendResult(
        provider="webpush",
        provider_message_id="https://push.example.net/m/1",
        info={"status": 201},
    )


# -- answers --


@pytest.mark.parametrize(
    ("status", "headers", "text", "error", "attributes"),
    [
        pytest.param(200, {}, "", None, {"provider_message_id": None}, id="200"),
        pytest.param(
            202, {"Location": "/m/9"}, "", None, {"provider_message_id": "/m/9"}, id="202"
        ),
        pytest.param(404, {}, "", PermanentSendError, {"address_rejected": True}, id="404"),
        pytest.param(410, {}, "Gone", PermanentSendError, {"address_rejected": True}, id="410"),
        pytest.param(400, {}, "bad TTL", PermanentSendError, {"address_rejected": False}, id="400"),
        pytest.param(401, {}, "no auth", PermanentSendError, {"address_rejected": False}, id="401"),
        pytest.param(403, {}, "bad key", PermanentSendError, {"address_rejected": False}, id="403"),
        pytest.param(413, {}, "too big", PermanentSendError, {"address_rejected": False}, id="413"),
        pytest.param(301, {"Location": "https://x"}, "", PermanentSendError, {}, id="redirect"),
        pytest.param(408, {}, "", RetryableSendError, {"retry_after": None}, id="408"),
        pytest.param(
            429, {"Retry-After": "120"}, "", RetryableSendError, {"retry_after": 120.0}, id="429"
        ),
        pytest.param(
            503,
            {"Retry-After": email.utils.formatdate(NOW + 90, usegmt=True)},
            "",
            RetryableSendError,
            {"retry_after": 90.0},
            id="503-http-date",
        ),
        pytest.param(
            500, {"Retry-After": "soon"}, "", RetryableSendError, {"retry_after": None}, id="500"
        ),
        pytest.param(502, {}, "", RetryableSendError, {"retry_after": None}, id="502"),
    ],
)
async def test_answers(
    client_factory: Callable[[Handler], httpx.AsyncClient],
    status: int,
    headers: dict[str, str],
    text: str,
    error: type[Exception] | None,
    attributes: dict[str, Any],
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, headers=headers, text=text)

    provider = make_provider(client_factory(handler))

    if error is None:
        result = await provider.send(make_message())
        for name, value in attributes.items():
            assert getattr(result, name) == value
    else:
        with pytest.raises(error) as caught:
            await provider.send(make_message())
        assert getattr(caught.value, "code", None) == status
        assert text in str(caught.value)
        for name, value in attributes.items():
            assert getattr(caught.value, name) == value
    assert len(calls) == 1  # never a redirect followed, never a retry inside send


async def test_error_text_is_trimmed(
    client_factory: Callable[[Handler], httpx.AsyncClient],
) -> None:
    provider = make_provider(client_factory(lambda request: httpx.Response(400, text="x" * 10_000)))

    with pytest.raises(PermanentSendError) as caught:
        await provider.send(make_message())

    assert len(str(caught.value)) < 300


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def _wrapped_refusal() -> Exception:
    error = httpx.ConnectError("refused")
    error.__cause__ = TargetRefused("10.0.0.1 is a private address")
    return error


@pytest.mark.parametrize(
    ("exc", "error", "code"),
    [
        pytest.param(httpx.ConnectTimeout("slow"), RetryableSendError, "timeout", id="timeout"),
        pytest.param(httpx.ReadTimeout("slow"), RetryableSendError, "timeout", id="read-timeout"),
        pytest.param(httpx.ConnectError("down"), RetryableSendError, "connection", id="connect"),
        pytest.param(
            httpx.RemoteProtocolError("bad"), RetryableSendError, "connection", id="proto"
        ),
        pytest.param(
            TargetRefused("169.254.169.254"), PermanentSendError, "target_refused", id="ref"
        ),
        pytest.param(_wrapped_refusal(), PermanentSendError, "target_refused", id="wrapped-ref"),
    ],
)
async def test_transport_errors(
    client_factory: Callable[[Handler], httpx.AsyncClient],
    exc: Exception,
    error: type[Exception],
    code: str,
) -> None:
    provider = make_provider(client_factory(_raise(exc)))

    with pytest.raises(error) as caught:
        await provider.send(make_message())

    assert getattr(caught.value, "code", None) == code
    if isinstance(caught.value, PermanentSendError):
        assert caught.value.address_rejected is False


@pytest.mark.parametrize(
    ("push", "code", "address_rejected"),
    [
        pytest.param(None, "no_subscription", False, id="missing"),
        pytest.param(
            PushSubscription("mailto:x@example.com", "AAAA", "AAAA"),
            "invalid_subscription",
            True,
            id="not-http",
        ),
        pytest.param(
            PushSubscription(ENDPOINT, b64url(b"\x04" + b"\x01" * 64), b64url(b"a" * 16)),
            "invalid_subscription",
            True,
            id="p256dh-not-a-point",
        ),
        pytest.param(
            PushSubscription(ENDPOINT, Browser().subscription.p256dh, b64url(b"short")),
            "invalid_subscription",
            True,
            id="auth-not-16-bytes",
        ),
        pytest.param(
            PushSubscription(ENDPOINT, "%%%", b64url(b"a" * 16)),
            "invalid_subscription",
            True,
            id="not-base64",
        ),
    ],
)
async def test_unusable_subscriptions(
    client_factory: Callable[[Handler], httpx.AsyncClient],
    push: PushSubscription | None,
    code: str,
    address_rejected: bool,
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201)

    provider = make_provider(client_factory(handler))

    with pytest.raises(PermanentSendError) as caught:
        await provider.send(make_message(push=push))

    assert caught.value.code == code
    assert caught.value.address_rejected is address_rejected
    assert calls == []


def test_padded_standard_base64_keys_are_accepted() -> None:
    browser = Browser()
    padded = PushSubscription(
        ENDPOINT,
        base64.b64encode(unb64url(browser.subscription.p256dh)).decode(),
        base64.b64encode(browser.auth).decode(),
    )
    plaintext = build_payload(make_message())

    assert browser.decrypt(encrypt_payload(plaintext, padded)) == plaintext


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("-5", None),
        ("1.5", None),
        ("tomorrow", None),
        (email.utils.formatdate(NOW + 60, usegmt=True), 60.0),
        (email.utils.formatdate(NOW - 60, usegmt=True), 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


async def test_aclose_leaves_the_shared_client_open(
    client_factory: Callable[[Handler], httpx.AsyncClient],
) -> None:
    client = client_factory(lambda request: httpx.Response(201))
    provider = make_provider(client)

    await provider.aclose()

    assert not client.is_closed
    assert (await provider.send(make_message())).provider == "webpush"


async def test_custom_name(client_factory: Callable[[Handler], httpx.AsyncClient]) -> None:
    provider = make_provider(client_factory(lambda request: httpx.Response(201)), name="push-eu")

    assert (await provider.send(make_message())).provider == "push-eu"
    assert (provider.name, provider.channel) == ("push-eu", "push")
