"""The outbound-target rules: which addresses and URLs Tidings may reach, with both flags."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tidings.channels.base import TargetRefused
from tidings.channels.outbound import (
    GuardedTransport,
    Resolver,
    address_refusal,
    validate_target_url,
)

PUBLIC = "public"
PRIVATE = "private"  # allowed only with allow_private
NEVER = "never"  # refused whatever the flag

ADDRESSES = [
    # public
    ("8.8.8.8", PUBLIC),
    ("93.184.216.34", PUBLIC),
    ("1.1.1.1", PUBLIC),
    ("172.32.0.1", PUBLIC),  # just past 172.16.0.0/12
    ("100.128.0.1", PUBLIC),  # just past 100.64.0.0/10
    ("169.253.255.255", PUBLIC),
    ("223.255.255.255", PUBLIC),
    ("2606:4700:4700::1111", PUBLIC),
    ("2a00:1450:4001:82b::200e", PUBLIC),
    ("::ffff:8.8.8.8", PUBLIC),
    ("64:ff9b::808:808", PUBLIC),  # NAT64 of 8.8.8.8
    ("2002:808:808::1", PUBLIC),  # 6to4 of 8.8.8.8
    # private, shared, loopback, documentation: allowed with the flag
    ("10.0.0.1", PRIVATE),
    ("10.255.255.255", PRIVATE),
    ("172.16.0.1", PRIVATE),
    ("172.31.255.254", PRIVATE),
    ("192.168.1.10", PRIVATE),
    ("100.64.0.1", PRIVATE),
    ("100.127.255.254", PRIVATE),
    ("127.0.0.1", PRIVATE),
    ("127.1.2.3", PRIVATE),
    ("192.0.2.10", PRIVATE),
    ("198.51.100.7", PRIVATE),
    ("203.0.113.99", PRIVATE),
    ("198.18.0.1", PRIVATE),
    ("::1", PRIVATE),
    ("fc00::1", PRIVATE),
    ("fd12:3456:789a::1", PRIVATE),
    ("2001:db8::1", PRIVATE),
    ("::ffff:10.0.0.1", PRIVATE),
    ("::ffff:127.0.0.1", PRIVATE),
    ("64:ff9b::a00:1", PRIVATE),  # NAT64 of 10.0.0.1
    ("2002:c0a8:101::1", PRIVATE),  # 6to4 of 192.168.1.1
    # always refused: link-local and metadata
    ("169.254.169.254", NEVER),
    ("169.254.0.1", NEVER),
    ("169.254.255.255", NEVER),
    ("100.100.100.200", NEVER),  # Alibaba Cloud metadata, inside 100.64.0.0/10
    ("fd00:ec2::254", NEVER),  # AWS IPv6 metadata, inside the ULA range
    ("fe80::1", NEVER),
    ("fe80::1%eth0", NEVER),
    ("febf:ffff::1", NEVER),
    # always refused: unspecified, multicast, broadcast, reserved
    ("0.0.0.0", NEVER),
    ("0.1.2.3", NEVER),
    ("::", NEVER),
    ("224.0.0.1", NEVER),
    ("239.255.255.250", NEVER),
    ("ff02::1", NEVER),
    ("ff05::1:3", NEVER),
    ("255.255.255.255", NEVER),
    ("240.0.0.1", NEVER),
    ("250.1.2.3", NEVER),
    ("100::1", NEVER),  # discard-only
    ("4000::1", NEVER),  # outside global unicast
    # IPv4 inside IPv6 is judged by the IPv4 address
    ("::ffff:169.254.169.254", NEVER),
    ("::ffff:a9fe:a9fe", NEVER),
    ("0:0:0:0:0:ffff:169.254.169.254", NEVER),
    ("::169.254.169.254", NEVER),  # IPv4-compatible
    ("::ffff:0:169.254.169.254", NEVER),  # IPv4-translated
    ("64:ff9b::169.254.169.254", NEVER),  # NAT64
    ("64:ff9b::a9fe:a9fe", NEVER),
    ("2002:a9fe:a9fe::", NEVER),  # 6to4
    ("::ffff:0.0.0.0", NEVER),
    ("::ffff:224.0.0.1", NEVER),
    ("64:ff9b:1::a9fe:a9fe", NEVER),  # local-use NAT64: cannot be judged
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", NEVER),  # Teredo
    # not an address at all
    ("", NEVER),
    ("example.com", NEVER),
    ("1.2.3", NEVER),
    ("[::1]", NEVER),
]


@pytest.mark.parametrize(("ip", "kind"), ADDRESSES)
def test_address_refusal(ip: str, kind: str) -> None:
    strict = address_refusal(ip, allow_private=False)
    relaxed = address_refusal(ip, allow_private=True)
    if kind == PUBLIC:
        assert strict is None
        assert relaxed is None
    elif kind == PRIVATE:
        assert strict  # a reason
        assert relaxed is None
    else:
        assert strict
        assert relaxed


@pytest.mark.parametrize(
    ("ip", "words"),
    [
        ("169.254.169.254", "metadata"),
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("10.0.0.1", "private"),
        ("127.0.0.1", "loopback"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_refusal_reasons_say_why(ip: str, words: str) -> None:
    reason = address_refusal(ip, allow_private=False)
    assert reason is not None
    assert words in reason


OK_STRICT = "ok"
OK_RELAXED = "relaxed"  # valid only with allow_private
BAD = "bad"

URLS = [
    ("https://hooks.example.com/tidings", OK_STRICT),
    ("https://hooks.example.com:8443/a/b?token=x#frag", OK_STRICT),
    ("https://93.184.216.34/hook", OK_STRICT),
    ("https://[2606:4700:4700::1111]/hook", OK_STRICT),
    ("https://bücher.example/hook", OK_STRICT),
    # names are judged after DNS, at send time
    ("https://metadata.google.internal/computeMetadata/v1/", OK_STRICT),
    ("https://rebind.example.net/", OK_STRICT),
    ("HTTPS://HOOKS.EXAMPLE.COM/", OK_STRICT),
    # plain http, private and loopback need the flag
    ("http://hooks.example.com/", OK_RELAXED),
    ("https://10.0.0.5/hook", OK_RELAXED),
    ("http://127.0.0.1:8080/hook", OK_RELAXED),
    ("https://[::1]/hook", OK_RELAXED),
    ("https://[fd00::5]/hook", OK_RELAXED),
    ("https://localhost/hook", OK_RELAXED),
    ("https://api.localhost/hook", OK_RELAXED),
    ("https://2130706433/", OK_RELAXED),  # 127.0.0.1 as one number
    # never
    ("https://169.254.169.254/latest/meta-data/", BAD),
    ("http://169.254.169.254/latest/meta-data/", BAD),
    ("https://[::ffff:169.254.169.254]/", BAD),
    ("https://[::ffff:a9fe:a9fe]/", BAD),
    ("https://[64:ff9b::a9fe:a9fe]/", BAD),
    ("https://[fe80::1]/", BAD),
    ("https://[fd00:ec2::254]/", BAD),
    ("https://2852039166/", BAD),  # 169.254.169.254 as one number
    ("https://0xa9fea9fe/", BAD),
    ("https://0251.0376.0251.0376/", BAD),
    ("https://0.0.0.0/", BAD),
    ("https://[::]/", BAD),
    ("https://224.0.0.1/", BAD),
    ("https://255.255.255.255/", BAD),
    ("ftp://hooks.example.com/", BAD),
    ("file:///etc/passwd", BAD),
    ("gopher://hooks.example.com/", BAD),
    ("javascript:alert(1)", BAD),
    ("hooks.example.com/no-scheme", BAD),
    ("/relative/path", BAD),
    ("", BAD),
    ("https://", BAD),
    ("https:///path-only", BAD),
    ("https://user:pass@hooks.example.com/", BAD),
    ("https://user@hooks.example.com/", BAD),
    ("https://hooks.example.com/" + "a" * 2100, BAD),
]


@pytest.mark.parametrize(("url", "kind"), URLS)
def test_validate_target_url(url: str, kind: str) -> None:
    for allow_private in (False, True):
        allowed = kind == OK_STRICT or (kind == OK_RELAXED and allow_private)
        if allowed:
            validate_target_url(url, allow_private=allow_private)
        else:
            with pytest.raises(ValueError, match=r"\S"):
                validate_target_url(url, allow_private=allow_private)


def test_validate_target_url_messages() -> None:
    with pytest.raises(ValueError, match="https://"):
        validate_target_url("http://hooks.example.com/", allow_private=False)
    with pytest.raises(ValueError, match="user name or password"):
        validate_target_url("https://a:b@hooks.example.com/", allow_private=True)
    with pytest.raises(ValueError, match="2048"):
        validate_target_url("https://h.example/" + "x" * 2048, allow_private=True)
    with pytest.raises(ValueError, match="metadata"):
        validate_target_url("https://169.254.169.254/", allow_private=True)
    validate_target_url("https://h.example/" + "x" * (2048 - 18), allow_private=False)


# GuardedTransport with a fake resolver and an inner transport that records what it is
# asked to send: the rewriting itself. Real sockets are in the integration tests.

Seen = list[httpx.Request]


def _recording_inner(seen: Seen) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    return httpx.MockTransport(handler)


def _resolver(answers: dict[str, list[str]], calls: list[str]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        calls.append(f"{host}:{port}")
        return answers[host]

    return resolve


async def _send(
    url: str, answers: dict[str, list[str]], *, allow_private: bool
) -> tuple[Seen, list[str]]:
    seen: Seen = []
    calls: list[str] = []
    transport = GuardedTransport(
        allow_private=allow_private,
        resolver=_resolver(answers, calls),
        inner=_recording_inner(seen),
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(url, content=b"{}")
    assert response.status_code == 204
    return seen, calls


async def test_https_request_goes_to_the_checked_address_with_name_for_sni() -> None:
    seen, calls = await _send(
        "https://hooks.example.com:8443/a?b=1",
        {"hooks.example.com": ["93.184.216.34"]},
        allow_private=False,
    )
    assert calls == ["hooks.example.com:8443"]
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34:8443/a?b=1"
    assert request.headers["Host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.content == b"{}"


async def test_ipv6_address_is_bracketed() -> None:
    seen, _ = await _send(
        "https://hooks.example.com/x",
        {"hooks.example.com": ["2606:4700:4700::1111"]},
        allow_private=False,
    )
    assert str(seen[0].url) == "https://[2606:4700:4700::1111]/x"
    assert seen[0].headers["Host"] == "hooks.example.com"


async def test_plain_http_sets_no_sni() -> None:
    seen, _ = await _send(
        "http://hooks.example.test/x", {"hooks.example.test": ["10.1.2.3"]}, allow_private=True
    )
    assert str(seen[0].url) == "http://10.1.2.3/x"
    assert "sni_hostname" not in seen[0].extensions


async def test_only_allowed_answers_are_used() -> None:
    seen, _ = await _send(
        "https://mixed.example.com/",
        {"mixed.example.com": ["10.0.0.7", "93.184.216.34"]},
        allow_private=False,
    )
    assert seen[0].url.host == "93.184.216.34"


async def test_ip_literals_skip_the_resolver() -> None:
    seen, calls = await _send("https://93.184.216.34/", {}, allow_private=False)
    assert calls == []
    assert seen[0].url.host == "93.184.216.34"


@pytest.mark.parametrize(
    ("url", "answers", "allow_private", "words"),
    [
        ("http://hooks.example.com/", {"hooks.example.com": ["93.184.216.34"]}, False, "https"),
        ("https://private.example/", {"private.example": ["10.0.0.1"]}, False, "10.0.0.1"),
        ("https://loop.example/", {"loop.example": ["127.0.0.1", "::1"]}, False, "loopback"),
        ("https://meta.example/", {"meta.example": ["169.254.169.254"]}, True, "metadata"),
        (
            "https://mixed.example/",
            {"mixed.example": ["93.184.216.34", "169.254.169.254"]},
            True,
            "169.254.169.254",
        ),
        ("https://mapped.example/", {"mapped.example": ["::ffff:169.254.169.254"]}, True, "169"),
        ("https://ll.example/", {"ll.example": ["fe80::1%2"]}, True, "link-local"),
        ("https://zero.example/", {"zero.example": ["0.0.0.0"]}, True, "unspecified"),
        ("https://169.254.169.254/", {}, True, "metadata"),
        ("https://2852039166/", {}, True, "metadata"),
        ("https://[::ffff:a9fe:a9fe]/", {}, True, "metadata"),
        ("https://garbage.example/", {"garbage.example": ["not-an-ip"]}, True, "not an IP"),
    ],
)
async def test_refused_targets(
    url: str, answers: dict[str, list[str]], allow_private: bool, words: str
) -> None:
    seen: Seen = []
    transport = GuardedTransport(
        allow_private=allow_private,
        resolver=_resolver(answers, []),
        inner=_recording_inner(seen),
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TargetRefused, match=words):
            await client.post(url, content=b"{}")
    assert seen == []


async def test_resolution_failure_is_a_connect_error() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    async def empty(host: str, port: int) -> list[str]:
        return []

    for resolver in (fail, empty):
        transport = GuardedTransport(
            allow_private=True, resolver=resolver, inner=_recording_inner([])
        )
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError, match=r"nowhere\.example"):
                await client.get("https://nowhere.example/")


async def test_slow_resolution_times_out_with_the_connect_timeout() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["93.184.216.34"]

    transport = GuardedTransport(allow_private=False, resolver=slow, inner=_recording_inner([]))
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, connect=0.05)) as c:
        with pytest.raises(httpx.ConnectTimeout):
            await c.get("https://slow.example/")
