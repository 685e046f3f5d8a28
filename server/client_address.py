"""The client's address: the direct peer, or, behind a trusted reverse proxy, what X-Forwarded-For says."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import hdrs, web

from .appkeys import SETTINGS

Network = IPv4Network | IPv6Network
CLIENT_ADDRESS = web.RequestKey("client_address", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def forwarded_client(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """Who sent the request: ``peer`` itself unless it is a trusted proxy, else the nearest untrusted hop.

    Each proxy appends the address it was connected from, so X-Forwarded-For is read from the right and
    only while the hop that wrote an entry is trusted: the first untrusted address is the client. What
    lies left of it the client wrote itself, and a client can write anything. An entry that is not an
    address ends the walk at the last address vouched for.
    """
    address = peer or ""
    if not _is_trusted(parse_address(address), trusted):
        return address
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = parse_address(hop)
        if parsed is None:
            break
        address = str(parsed)
        if not _is_trusted(parsed, trusted):
            break
    return address


def parse_address(text: str) -> IPv4Address | IPv6Address | None:
    """An address as proxies write it: ``192.0.2.7``, ``2001:db8::7``, or with a port (``192.0.2.7:5050``,
    ``[2001:db8::7]:5050``). IPv4 mapped into IPv6 (a dual-stack socket's ``::ffff:127.0.0.1``) is IPv4."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        parsed = ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _is_trusted(address: IPv4Address | IPv6Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


@web.middleware
async def client_address_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Work out the client's address once per request, for the handlers and the access log alike."""
    request[CLIENT_ADDRESS] = forwarded_client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, ()),
                                               request.config_dict[SETTINGS].trusted_proxies)
    return await handler(request)


def client_address(request: web.BaseRequest) -> str:
    """The address of the client that sent this request: what the login throttle counts, consents and the
    audit record, and the access log shows."""
    if CLIENT_ADDRESS in request:
        return request[CLIENT_ADDRESS]
    # Only a request aiohttp refused before routing it (malformed HTTP) misses the middleware: all that
    # is known of it is its direct peer.
    return request.remote or ""
