"""The internal event vocabulary shared by every HTTP version.

Protocol adapters (h11, h2, h3) turn wire events into ``Request``/``Body``/``EndBody``/
``StreamClosed`` for a stream; the stream state machines answer with ``Response``/
``InformationalResponse``/``Body``/``EndBody``/``Trailers``/``Data``/``EndData``, and with
``StreamClosed`` when they abandon a stream (which the adapter turns into a reset or a close).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Event:
    stream_id: int


@dataclass(slots=True)
class Request(Event):
    headers: list[tuple[bytes, bytes]]
    http_version: str
    method: str
    raw_path: bytes


@dataclass(slots=True)
class Body(Event):
    data: bytes


@dataclass(slots=True)
class EndBody(Event):
    pass


@dataclass(slots=True)
class Data(Event):
    data: bytes


@dataclass(slots=True)
class EndData(Event):
    pass


@dataclass(slots=True)
class Response(Event):
    """The response head; a response the application sent in one piece also carries its
    ``body`` and ``end`` (as if ``Body`` and ``EndBody`` followed): one event, not three."""

    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    end: bool = False


@dataclass(slots=True)
class InformationalResponse(Event):
    status_code: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Trailers(Event):
    """Response trailers; they end the response (no ``EndBody`` follows)."""

    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class ServerPush(Event):
    """Push ``path`` (with request ``headers``) as a response promised on ``stream_id``."""

    path: bytes
    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class StreamClosed(Event):
    pass
