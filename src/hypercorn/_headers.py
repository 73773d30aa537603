"""Response header validation and the body rule, shared by every protocol: public as
:mod:`hypercorn.utils`' functions, kept in this module of their own so the compiled build
compiles them (they run on every response) without the rest of utils. Also the per-second
cache of the headers the server adds to every response (:class:`DefaultHeaders`), which reads
the clock, as the protocol core does not."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from time import time
from typing import Union

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_HeaderLike = Union[bytes, str]


def _as_bytes(value: _HeaderLike) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("latin-1")
    raise TypeError(f"Header names and values must be bytes or str, not {type(value).__name__}")


def build_and_validate_headers(
    headers: Iterable[tuple[_HeaderLike, _HeaderLike]] | Mapping[_HeaderLike, _HeaderLike],
) -> list[tuple[bytes, bytes]]:
    """Return headers as a list of lower-cased ``(name, value)`` byte pairs, validated.

    Accepts a mapping or an iterable of pairs of bytes or str. Raises ``ValueError`` for a
    pseudo-header, a name that is not an RFC 9110 token, or a value containing CR, LF or NUL.
    """
    items: Iterable[tuple[_HeaderLike, _HeaderLike]]
    if type(headers) is list:  # the common case (isinstance against an ABC costs ~1 us)
        items = headers
    else:
        items = headers.items() if isinstance(headers, Mapping) else headers
    result: list[tuple[bytes, bytes]] = []
    validated = _VALIDATED
    for item in items:
        # Applications send the same few headers again and again: a pair seen before is
        # looked up instead of validated (only immutable pairs of bytes or str are cached).
        try:
            pair = validated.get(item) if type(item) is tuple else None
        except TypeError:  # an unhashable part: _validate says what is wrong with it
            pair = None
        if pair is None:
            raw_name, raw_value = item
            pair = _validate(raw_name, raw_value)
            if type(item) is tuple and len(pair[0]) + len(pair[1]) <= _CACHED_PAIR_SIZE:
                if len(validated) >= _CACHED_PAIRS:
                    validated.clear()  # many distinct values (cookies, lengths): start over
                validated[item] = pair
        result.append(pair)
    return result


def _validate(raw_name: _HeaderLike, raw_value: _HeaderLike) -> tuple[bytes, bytes]:
    name = _as_bytes(raw_name).lower()
    value = _as_bytes(raw_value)
    if name[:1] == b":":
        raise ValueError(f"Pseudo header {name!r} is not allowed in a response")
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"Invalid header name {name!r}")
    if _BAD_VALUE.search(value) is not None:
        raise ValueError(f"Invalid header value for {name!r}")
    return name, value.strip(b" \t")


# The cache of validated header pairs: at most this many, each at most this many bytes.
_CACHED_PAIRS = 1024
_CACHED_PAIR_SIZE = 256
_VALIDATED: dict[tuple[_HeaderLike, _HeaderLike], tuple[bytes, bytes]] = {}


def filter_pseudo_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Remove HTTP/2 and HTTP/3 pseudo-headers (names starting with ``:``)."""
    return [(name, value) for name, value in headers if name[:1] != b":"]


def suppress_body(method: str, status_code: int) -> bool:
    """True when a response to ``method`` with ``status_code`` must not carry a body."""
    return method == "HEAD" or 100 <= status_code < 200 or status_code in (204, 304)


_HeaderTuple = tuple[tuple[bytes, bytes], ...]


class DefaultHeaders:
    """The headers the server adds to every response (``Config.response_headers``: Date,
    Server, Alt-Svc) as one shared tuple per protocol and TLS, made again when the second,
    and so the Date, changes."""

    __slots__ = ("_make", "_plain", "_secure")

    def __init__(self, make: Callable[[str, bool], list[tuple[bytes, bytes]]]) -> None:
        self._make = make
        # (the second they were made in, the headers) per protocol name
        self._plain: dict[str, tuple[int, _HeaderTuple]] = {}
        self._secure: dict[str, tuple[int, _HeaderTuple]] = {}

    def get(self, protocol: str, secure: bool) -> _HeaderTuple:
        second = int(time())
        cache = self._secure if secure else self._plain
        entry = cache.get(protocol)
        if entry is None or entry[0] != second:
            entry = cache[protocol] = (second, tuple(self._make(protocol, secure)))
        return entry[1]
