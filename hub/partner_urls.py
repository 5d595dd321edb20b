"""Where the hub may send a partner's calls: a public http(s) host, never the cloud's
metadata service or a link-local address, and a loopback or private address only when
HUB_ALLOW_PRIVATE_PARTNERS=1 (the demo's sandboxes on 127.0.0.1).

The check reads the URL as written: literal addresses in every form a resolver accepts
(127.1, 2130706433, 0x7f.0.0.1, ::ffff:127.0.0.1) and the well-known local names. A
public name that resolves to a private address (DNS rebinding) is not caught here; the
egress firewall of a production deployment is the layer for that.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")  # AWS, GCP; Alibaba
)
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}", re.IGNORECASE)


def _address(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts; else None."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if not _LEGACY_IPV4.fullmatch(host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def problem(url: str, *, allow_private: bool, what: str = "baseUrl") -> str | None:
    """Why the hub must not call this URL (a partner's `baseUrl`, a webhook's `url`); None
    when it may. `what` names the field in the sentence."""
    why = _problem(url, allow_private=allow_private)
    return None if why is None else why.replace("baseUrl", what)


def _address_problem(address: IPAddress | None, local: bool, allow_private: bool) -> str | None:
    if address in METADATA_ADDRESSES:
        return "baseUrl points at a cloud metadata service."
    if address is not None and (
        address.is_link_local or address.is_multicast or address.is_unspecified
    ):
        return "baseUrl points at a link-local, multicast or unspecified address."
    if (local or (address is not None and not address.is_global)) and not allow_private:
        return (
            "baseUrl points at a loopback or private address; partners are reached on "
            "public addresses (set HUB_ALLOW_PRIVATE_PARTNERS=1 for sandboxes on this "
            "machine or network)."
        )
    return None


async def resolved_problem(url: str, *, allow_private: bool, what: str = "url") -> str | None:
    """`problem`, then the same rules for every address the host resolves to now: a
    name stored earlier, or one whose records changed, is checked where it leads."""
    why = problem(url, allow_private=allow_private, what=what)
    if why is not None:
        return why
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if _address(host) is not None:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return None  # the request itself will fail and be retried
    for info in infos:
        address = _address(str(info[4][0]))
        why = _address_problem(address, False, allow_private)
        if why is not None:
            return why.replace("baseUrl", what)
    return None


def _problem(url: str, *, allow_private: bool) -> str | None:
    if any(c.isspace() or c == "\\" or ord(c) < 32 for c in url):
        return "baseUrl must not contain spaces, backslashes or control characters."
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
        ours = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return "baseUrl is not a valid URL."
    del port
    if parts.scheme not in ("http", "https"):
        return "baseUrl must be an http:// or https:// URL."
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "baseUrl needs a host name."
    if parts.username is not None or parts.password is not None:
        return "baseUrl must not carry credentials; the shared secret goes in secretRef."
    if ours.host.rstrip(".").lower() != host:  # two parsers must agree on where it goes
        return "baseUrl is ambiguous about its host."
    if host in METADATA_HOSTS:
        return "baseUrl points at a cloud metadata service."
    local = host == "localhost" or host.endswith(".localhost")
    return _address_problem(_address(host), local, allow_private)
