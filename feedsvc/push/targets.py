"""Where webhooks may go (issue 4, part 6): the guard against server-side request forgery.

A webhook makes feedsvc send requests to a URL a client chose, from inside the network
feedsvc runs in. So a target must be an http(s) URL without credentials whose host resolves
only to public addresses: loopback, private, link-local, multicast, reserved and
unspecified ranges are refused, in IPv4 and IPv6, and an IPv6 address that carries an IPv4
one (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``) is judged by that IPv4 address too.
Ranges named in ``FEEDSVC_WEBHOOK_ALLOWED_NETWORKS`` are allowed all the same.

The URL is checked when it is registered, for a clear 422, and again on every connection:
``GuardedBackend`` resolves the host itself, refuses the connection if any address is not
allowed, and connects to the very addresses it checked, so a DNS answer that changes between
the check and the connection (rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from feedsvc.errors import InvalidInputError, UnprocessableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT = 5.0
"""Seconds a DNS lookup of a webhook host may take."""

_SIXTOFOUR = ipaddress.ip_network("2002::/16")


class RefusedTarget(Exception):
    """A webhook host resolves to an address webhooks may not reach (or to none)."""


def parse_target(url: str) -> httpx.URL:
    """The URL, if it can be a webhook target at all: absolute http(s), a host, no user
    name or password, no fragment. InvalidInputError naming ``url`` otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as e:
        raise InvalidInputError(f"url is not a valid URL: {e}", field="url", source="body") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInputError("url must be an absolute http:// or https:// URL", field="url", source="body")
    if parsed.userinfo:
        raise InvalidInputError(
            "url must not carry a user name or password; check the signature instead", field="url", source="body"
        )
    if parsed.fragment:
        raise InvalidInputError("url must not have a #fragment", field="url", source="body")
    return parsed


def refusal(address: IPAddress) -> str | None:
    """What keeps webhooks from ``address`` by default ("a loopback address"), or None
    when it is public. An IPv4-mapped address is judged as the IPv4 address it maps to; a
    6to4 one as itself and as the IPv4 address it carries."""
    checks: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            checks = [address.ipv4_mapped]
        elif address in _SIXTOFOUR and address.sixtofour is not None:
            checks.append(address.sixtofour)
    for ip in checks:
        for kind, flag in (
            ("an unspecified", ip.is_unspecified),
            ("a loopback", ip.is_loopback),
            ("a link-local", ip.is_link_local),
            ("a multicast", ip.is_multicast),
            ("a private", ip.is_private),
            ("a reserved", ip.is_reserved),
            ("not a public", not ip.is_global),
        ):
            if flag:
                return f"{kind} address" if ip == address else f"{ip}, {kind} address"
    return None


class TargetPolicy:
    """Decides which addresses webhooks may reach: public ones, and ``allowed_networks``."""

    def __init__(self, allowed_networks: Iterable[str] = ()) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)

    def refusal(self, address: IPAddress) -> str | None:
        """What keeps webhooks from ``address`` ("a private address"), or None."""
        embedded = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        for ip in (address, embedded):
            if ip is not None and any(ip.version == n.version and ip in n for n in self.allowed):
                return None
        return refusal(address)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, each one allowed; RefusedTarget otherwise."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, ValueError) as e:  # ValueError: UnicodeError, a label too long
            raise RefusedTarget(f"{host} does not resolve: {e or 'timed out'}") from None
        addresses: list[IPAddress] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            reason = self.refusal(address)
            if reason is not None:
                named = host.strip("[]") == str(address)
                raise RefusedTarget(f"{address} is {reason}" if named else f"{host} resolves to {address}: {reason}")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise RefusedTarget(f"{host} does not resolve")
        return addresses

    async def check_url(self, url: str) -> httpx.URL:
        """Check a URL at registration: InvalidInputError (400) when it is no target URL,
        UnprocessableError (422) when its host does not resolve or resolves to an address
        webhooks may not reach; both name ``url``."""
        parsed = parse_target(url)
        try:
            await self.resolve(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
        except RefusedTarget as e:
            raise UnprocessableError(
                f"url is refused: {e}; webhooks go only to public addresses unless "
                "FEEDSVC_WEBHOOK_ALLOWED_NETWORKS allows the range",
                field="url",
                source="body",
            ) from None
        return parsed


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: TargetPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.policy.resolve(host, port):
            try:
                return await self.inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedTarget("webhooks do not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
