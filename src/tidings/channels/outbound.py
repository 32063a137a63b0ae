"""Which outbound targets Tidings may connect to, and an httpx transport that enforces it.

Webhook URLs and Web Push endpoints are chosen by tenants and browsers, so without a
guard they would let anyone make the service call its own network: the cloud metadata
service at 169.254.169.254, a database on 10.0.0.5, an admin port on 127.0.0.1. The rules
(SPEC "Outbound targets"):

- targets are https on public addresses;
- ``allow_private`` (``TIDINGS_ALLOW_PRIVATE_TARGETS``) also admits plain http and
  non-public unicast addresses: RFC 1918, 100.64.0.0/10, ULA, loopback and the
  documentation and benchmarking ranges;
- link-local (so the metadata service), multicast, unspecified, broadcast and reserved
  addresses, and the known metadata addresses outside link-local, are always refused.

An IPv6 address that carries an IPv4 address (mapped, translated, compatible, 6to4,
NAT64) is judged by the IPv4 address, since that is where the packets end up.

``validate_target_url`` checks a URL when it is registered, before any DNS.
``GuardedTransport`` checks again at every request, after DNS, and then connects to the
very address it checked, so a name that resolves differently the second time (DNS
rebinding) cannot slip past the check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Final

import httpx

from tidings.channels.base import TargetRefused

__all__ = [
    "MAX_URL_LENGTH",
    "GuardedTransport",
    "Resolver",
    "address_refusal",
    "system_resolver",
    "validate_target_url",
]

MAX_URL_LENGTH: Final = 2048
# A name that resolves to many addresses is tried on at most this many.
_MAX_CONNECT_ATTEMPTS: Final = 4

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: how ``GuardedTransport`` resolves a name."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Tier(Enum):
    PUBLIC = "public"
    NON_PUBLIC = "non-public"  # allowed with allow_private
    FORBIDDEN = "forbidden"  # never allowed


def _table(*rows: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network, str], ...]:
    return tuple((ipaddress.IPv4Network(net), reason) for net, reason in rows)


def _table6(*rows: tuple[str, str]) -> tuple[tuple[ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.IPv6Network(net), reason) for net, reason in rows)


_METADATA = "cloud metadata address"
_FORBIDDEN_V4 = _table(
    ("169.254.169.254/32", _METADATA),
    ("100.100.100.200/32", _METADATA),  # Alibaba Cloud, inside 100.64.0.0/10
    ("169.254.0.0/16", "link-local address"),
    # 0.0.0.0 reaches the local host on Linux, and the rest of 0/8 is not routable
    ("0.0.0.0/8", "unspecified address"),
    ("224.0.0.0/4", "multicast address"),
    ("255.255.255.255/32", "broadcast address"),
    ("240.0.0.0/4", "reserved address"),
)
_NON_PUBLIC_V4 = _table(
    ("127.0.0.0/8", "loopback address"),
    ("10.0.0.0/8", "private address"),
    ("172.16.0.0/12", "private address"),
    ("192.168.0.0/16", "private address"),
    ("100.64.0.0/10", "shared address (carrier-grade NAT)"),
    ("192.0.0.0/24", "IETF protocol address"),
    ("192.0.2.0/24", "documentation address"),
    ("198.51.100.0/24", "documentation address"),
    ("203.0.113.0/24", "documentation address"),
    ("198.18.0.0/15", "benchmarking address"),
)
_FORBIDDEN_V6 = _table6(
    ("fd00:ec2::254/128", _METADATA),  # AWS, inside the ULA range
    ("::/128", "unspecified address"),
    ("fe80::/10", "link-local address"),
    ("ff00::/8", "multicast address"),
    ("100::/64", "discard-only address"),
    # The IPv4 address inside a local-use NAT64 prefix sits where the operator chose,
    # and Teredo obfuscates it: neither can be judged, and neither is a real target.
    ("64:ff9b:1::/48", "local-use NAT64 address"),
    ("2001::/32", "Teredo address"),
)
_NON_PUBLIC_V6 = _table6(
    ("::1/128", "loopback address"),
    ("fc00::/7", "unique local address"),
    ("fec0::/10", "site-local address"),
    ("2001:db8::/32", "documentation address"),
    ("3fff::/20", "documentation address"),
    ("2001:2::/48", "benchmarking address"),
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")
_COMPATIBLE_V6 = ipaddress.IPv6Network("::/96")
_TRANSLATED_PREFIX = 0xFFFF0000  # ::ffff:0:a.b.c.d (SIIT), the top 96 bits


def _parse(ip: str) -> IPAddress | None:
    # A scope ("fe80::1%eth0") names an interface, not an address: judge the address.
    try:
        return ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    value = int(address)
    if address in _NAT64_V6 or address in _COMPATIBLE_V6 or value >> 32 == _TRANSLATED_PREFIX:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def _classify(address: IPAddress) -> tuple[_Tier, str]:
    if isinstance(address, ipaddress.IPv4Address):
        for network, reason in _FORBIDDEN_V4:
            if address in network:
                return _Tier.FORBIDDEN, reason
        for network, reason in _NON_PUBLIC_V4:
            if address in network:
                return _Tier.NON_PUBLIC, reason
        return _Tier.PUBLIC, "public address"
    for network6, reason in _FORBIDDEN_V6:
        if address in network6:
            return _Tier.FORBIDDEN, reason
    for network6, reason in _NON_PUBLIC_V6:
        if address in network6:
            return _Tier.NON_PUBLIC, reason
    inner = _embedded_v4(address)
    if inner is not None:
        tier, reason = _classify(inner)
        return tier, f"{reason} (IPv4 {inner} inside IPv6)"
    if address not in _GLOBAL_UNICAST_V6:
        return _Tier.FORBIDDEN, "reserved address"
    return _Tier.PUBLIC, "public address"


def _judge(ip: str) -> tuple[_Tier, str]:
    address = _parse(ip)
    if address is None:
        return _Tier.FORBIDDEN, "not an IP address"
    return _classify(address)


def address_refusal(ip: str, *, allow_private: bool) -> str | None:
    """Return why Tidings may not connect to ``ip``, or ``None`` when it may.

    ``ip`` is an IPv4 or IPv6 address in text form (no brackets; an IPv6 scope is
    ignored). With ``allow_private`` private, shared, ULA and loopback addresses are
    allowed too; link-local, multicast, unspecified, broadcast, reserved and cloud
    metadata addresses never are.
    """
    tier, reason = _judge(ip)
    if tier is _Tier.PUBLIC or (tier is _Tier.NON_PUBLIC and allow_private):
        return None
    return reason


def _literal_address(host: str) -> IPAddress | None:
    """The address a URL host stands for without DNS, if it is an address at all.

    Besides the usual forms, C libraries read ``2852039166``, ``0xa9fea9fe`` and
    ``0251.0376.0251.0376`` as IPv4 addresses (169.254.169.254 each time).
    """
    address = _parse(host)
    if address is not None:
        return address
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def validate_target_url(url: str, *, allow_private: bool) -> None:
    """Check a webhook URL or push endpoint at registration; raise ValueError if refused.

    The URL must be absolute https (or http with ``allow_private``), name a host,
    carry no user name or password and be at most 2,048 characters. A host that is an
    IP address is checked with ``address_refusal``; host names are checked when a
    request is made, after DNS (see ``GuardedTransport``), except ``localhost``, which
    is loopback by definition (RFC 6761). The messages are meant for API users.
    """
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL must be at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"the URL is not valid: {exc}") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed:
        raise ValueError(
            "the URL must start with https:// or http://"
            if allow_private
            else "the URL must start with https://"
        )
    if parsed.userinfo:
        raise ValueError("the URL must not contain a user name or password")
    host = parsed.raw_host.decode("ascii").rstrip(".").lower()
    if not host:
        raise ValueError("the URL must name a host")
    address = _literal_address(host)
    if address is not None:
        reason = address_refusal(str(address), allow_private=allow_private)
        if reason is not None:
            raise ValueError(f"the URL's host {host} is not allowed: {reason}")
    elif not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise ValueError(f"the URL's host {host} is not allowed: loopback address")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the event loop's getaddrinfo; addresses in the system's order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _default_inner(verify: ssl.SSLContext | bool = True) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30),
    )


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to addresses ``address_refusal`` allows.

    For every request it checks the scheme, resolves the host once with ``resolver``,
    refuses (``TargetRefused``) when any answer is always forbidden or none is allowed,
    and hands ``inner`` a copy of the request whose URL names the checked address. The
    ``Host`` header keeps the name, and for https the ``sni_hostname`` extension makes
    TLS send and verify the name, so the HTTP stack never resolves the name again.
    When connecting to the first allowed address fails, the next ones are tried
    (replayable bodies only).

    Use it as ``httpx.AsyncClient(transport=GuardedTransport(...))``; a client given a
    transport ignores proxy environment variables, and an explicit ``proxy=`` or
    ``mounts=`` would bypass the guard. Connections are pooled by address, so two names
    served from one address and port may share a kept-alive connection.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._allow_private = allow_private
        self._schemes = ("https", "http") if allow_private else ("https",)
        self._resolver: Resolver = resolver if resolver is not None else system_resolver
        # ``verify`` (for the default inner transport): building a TLS context loads the
        # CA bundle, so processes pass the one they share
        self._inner = inner if inner is not None else _default_inner(verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the target, then send ``request`` to the checked address."""
        url = request.url
        if url.scheme not in self._schemes:
            raise TargetRefused(
                f"{url.scheme or 'a URL without a scheme'} is not allowed for outbound "
                f"requests; use {' or '.join(self._schemes)}"
            )
        host = url.raw_host.decode("ascii")
        if not host:
            raise TargetRefused("the URL names no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self._allowed_addresses(request, host, port)

        headers = httpx.Headers(request.headers)
        if "host" not in headers:
            headers["Host"] = url.netloc.decode("ascii")
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host.rstrip(".")
        replayable = isinstance(request.stream, httpx.ByteStream)
        attempts = addresses[:_MAX_CONNECT_ATTEMPTS] if replayable else addresses[:1]
        for index, address in enumerate(attempts):
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=address),
                headers=headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except httpx.ConnectError:
                # Nothing was sent yet, so another of the checked addresses may serve.
                if index == len(attempts) - 1:
                    raise
        raise AssertionError("unreachable: at least one address is attempted")

    async def _allowed_addresses(self, request: httpx.Request, host: str, port: int) -> list[str]:
        literal = _literal_address(host)
        if literal is not None:
            resolved = [str(literal)]
        else:
            resolved = await self._resolve(request, host, port)
        allowed: list[str] = []
        refusals: list[str] = []
        for ip in resolved:
            tier, reason = _judge(ip)
            if tier is _Tier.FORBIDDEN:
                # One forbidden answer taints the name: it is either misconfigured or
                # an attempt to reach an internal service.
                raise TargetRefused(f"refused to connect to {host}: {ip} is a {reason}")
            if tier is _Tier.PUBLIC or self._allow_private:
                allowed.append(str(_parse(ip)))
            else:
                refusals.append(f"{ip} is a {reason}")
        if not allowed:
            detail = "; ".join(refusals) or "no address"
            raise TargetRefused(
                f"refused to connect to {host}: {detail} "
                "(private targets need TIDINGS_ALLOW_PRIVATE_TARGETS=true)"
            )
        return allowed

    async def _resolve(self, request: httpx.Request, host: str, port: int) -> list[str]:
        timeouts = request.extensions.get("timeout", {})
        limit = timeouts.get("connect") if isinstance(timeouts, dict) else None
        try:
            async with asyncio.timeout(limit):
                resolved = await self._resolver(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"resolving {host} timed out", request=request) from None
        except (OSError, UnicodeError) as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
        if not resolved:
            raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        return resolved

    async def aclose(self) -> None:
        """Close the inner transport and its connections."""
        await self._inner.aclose()
