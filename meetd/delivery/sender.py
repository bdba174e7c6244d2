"""Sending one signed callback over HTTP, with aiohttp: keep-alive connections, a bounded
wait, and optionally no way to reach loopback or private addresses.

With ``block_private_addresses`` a host name is resolved first and only its public
addresses are connected to — the check and the connection use the same addresses, so a
name that resolves differently the second time (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from meetd.domain import events
from meetd.store.events import Claimed, Outcome

TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 256


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp does, then drops every address that is not public."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public(entry["host"])]
        if not public:
            # With an errno, aiohttp shows the reason (strerror) in the error it raises.
            raise OSError(errno.EACCES, f"{host} resolves only to loopback or private addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


def refused_host(url: str) -> str | None:
    """With private addresses blocked: why ``url``'s host is refused before any lookup (an IP
    literal that is not public, or ``localhost``), else None."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # stored before the API refused such URLs
        return "the URL is not valid"
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return f"{host} is a loopback name"
    try:
        public = is_public(host)
    except ValueError:
        return None  # a name: the resolver decides
    return None if public else f"{host} is not a public address"


class Sender:
    def __init__(self, *, block_private_addresses: bool, timeout: float = TIMEOUT_SECONDS):
        self.block_private_addresses = block_private_addresses
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver: Any = PublicOnlyResolver() if self.block_private_addresses else None
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, limit_per_host=MAX_CONNECTIONS, resolver=resolver
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # callbacks carry no cookies
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, event: Claimed, *, now_s: int) -> Outcome:
        """One attempt; never raises for anything the receiver or the network does."""
        if self.block_private_addresses:
            refused = refused_host(event.url)
            if refused is not None:
                reason = events.excerpt(f"refused: {refused}", events.MAX_ERROR_TEXT)
                return _failed(event, None, reason, None)
        token = events.sign(
            event.body,
            secret=event.signature_secret,
            application_id=event.application_id,
            now_s=now_s,
        )
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": events.USER_AGENT,
            events.EVENT_ID_HEADER: event.id,
            events.EVENT_TYPE_HEADER: event.type,
            events.ATTEMPT_HEADER: str(event.attempt),
        }
        if event.metadata is not None:
            headers[events.METADATA_HEADER] = events.metadata_header(event.metadata)
        try:
            async with self._client().post(
                event.url, data=event.body, headers=headers, allow_redirects=False
            ) as response:
                excerpt = await response.content.read(events.MAX_RESPONSE_EXCERPT)
                text = excerpt.decode("utf-8", "replace") or None
                if 200 <= response.status < 300:
                    return Outcome(
                        event.serial,
                        True,
                        response.status,
                        None,
                        text,
                        attempt=event.attempt,
                        lease_until=event.lease_until,
                    )
                return _failed(event, response.status, f"HTTP {response.status}", text)
        except TimeoutError:
            return _failed(event, None, f"timed out after {self.timeout:g} s", None)
        except (aiohttp.ClientError, OSError, ValueError) as error:
            reason = events.excerpt(f"{type(error).__name__}: {error}", events.MAX_ERROR_TEXT)
            return _failed(event, None, reason, None)
        except asyncio.CancelledError:
            raise


def _failed(event: Claimed, status_code: int | None, error: str, response: str | None) -> Outcome:
    return Outcome(
        event.serial,
        False,
        status_code,
        error,
        response,
        attempt=event.attempt,
        lease_until=event.lease_until,
    )
