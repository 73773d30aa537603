"""Server-level trusted proxies: take the client, scheme, host and prefix from forwarded
headers, but only when the socket peer is a trusted proxy.

``proxy_headers = "x-forwarded"`` reads X-Forwarded-For/-Proto/-Host/-Prefix; ``"forwarded"``
reads RFC 7239 ``Forwarded`` (one family only, so one cannot be smuggled through the other).
The client is found by walking the address list from the right, skipping addresses that are
themselves trusted proxies: the first untrusted one is the client (entries further left were
written by the client and prove nothing). Scheme, host and prefix are taken from the nearest
proxy (the rightmost value). ``trusted_proxies`` holds IPs, CIDRs, ``unix`` (a unix-socket
peer) or ``*``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass
class Forwarded:
    client: Optional[str] = None
    scheme: Optional[str] = None
    host: Optional[str] = None
    prefix: Optional[str] = None


@lru_cache(maxsize=16)
def _trust(trusted: tuple[str, ...]) -> tuple[bool, bool, tuple[Network, ...]]:
    networks = tuple(
        ipaddress.ip_network(item, strict=False) for item in trusted if item not in ("*", "unix")
    )
    return "*" in trusted, "unix" in trusted, networks


def is_trusted(address: Optional[str], trusted: Sequence[str]) -> bool:
    """True if ``address`` (None for a unix-socket peer) is one of the trusted proxies."""
    everyone, unix, networks = _trust(tuple(trusted))
    if everyone:
        return True
    if address is None:
        return unix
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    values: list[str] = []
    for header_name, value in headers:
        if header_name == name:
            values += [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
    return values


def _node(value: str) -> str:
    """The address in a forwarded node: ``"[2001:db8::1]:4711"`` -> ``2001:db8::1``."""
    value = value.strip('"')
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def has_forwarded_headers(headers: Iterable[tuple[bytes, bytes]], mode: str) -> bool:
    names = (
        (b"forwarded",)
        if mode == "forwarded"
        else (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-prefix")
    )
    return any(name in names for name, _ in headers)


def resolve(headers: Iterable[tuple[bytes, bytes]], mode: str, trusted: Sequence[str]) -> Forwarded:
    """What the trusted proxies say about the request (call only for a trusted peer)."""
    headers = list(headers)
    result = Forwarded()
    if mode == "forwarded":
        elements = []
        for value in _values(headers, b"forwarded"):
            fields = {}
            for pair in value.split(";"):
                key, sep, item = pair.partition("=")
                if sep:
                    fields[key.strip().lower()] = item.strip().strip('"')
            elements.append(fields)
        addresses = [_node(element["for"]) for element in elements if "for" in element]
        if elements:
            result.scheme = elements[-1].get("proto")
            result.host = elements[-1].get("host")
    else:
        addresses = [_node(value) for value in _values(headers, b"x-forwarded-for")]
        for attribute, name in (
            ("scheme", b"x-forwarded-proto"),
            ("host", b"x-forwarded-host"),
            ("prefix", b"x-forwarded-prefix"),
        ):
            values = _values(headers, name)
            if values:
                setattr(result, attribute, values[-1])
    for address in reversed(addresses):
        result.client = address
        if not is_trusted(address, trusted):
            break
    if result.scheme is not None:
        result.scheme = result.scheme.lower()
        if result.scheme not in ("http", "https"):
            result.scheme = None
    return result
