"""The internal event vocabulary shared by every HTTP version.

Protocol adapters (h11, h2, h3) turn wire events into ``Request``/``Body``/``EndBody``/
``StreamClosed`` for a stream; the stream state machines answer with ``Response``/
``InformationalResponse``/``Body``/``EndBody``/``Trailers``/``Data``/``EndData``, and with
``StreamClosed`` when they abandon a stream (which the adapter turns into a reset or a close).
"""

from __future__ import annotations

from dataclasses import dataclass

# Every event is made per request (or per body chunk), so each writes its own __init__
# (init=False): the compiled build compiles it, where the one dataclass generates at import
# runs as interpreted code setting each field through a descriptor (5x slower to construct,
# measured). The dataclass still gives them their comparison and repr.


@dataclass(slots=True, init=False)
class Event:
    stream_id: int

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


@dataclass(slots=True, init=False)
class Request(Event):
    headers: list[tuple[bytes, bytes]]
    http_version: str
    method: str
    raw_path: bytes

    def __init__(
        self,
        stream_id: int,
        headers: list[tuple[bytes, bytes]],
        http_version: str,
        method: str,
        raw_path: bytes,
    ) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.http_version = http_version
        self.method = method
        self.raw_path = raw_path


@dataclass(slots=True, init=False)
class Body(Event):
    data: bytes

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data


@dataclass(slots=True, init=False)
class EndBody(Event):
    pass


@dataclass(slots=True, init=False)
class Data(Event):
    data: bytes

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data


@dataclass(slots=True, init=False)
class EndData(Event):
    pass


@dataclass(slots=True, init=False)
class Response(Event):
    """The response head; a response the application sent in one piece also carries its
    ``body`` and ``end`` (as if ``Body`` and ``EndBody`` followed): one event, not three."""

    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    end: bool

    def __init__(
        self,
        stream_id: int,
        status_code: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        end: bool = False,
    ) -> None:
        self.stream_id = stream_id
        self.status_code = status_code
        self.headers = headers
        self.body = body
        self.end = end


@dataclass(slots=True, init=False)
class InformationalResponse(Event):
    status_code: int
    headers: list[tuple[bytes, bytes]]

    def __init__(
        self,
        stream_id: int,
        status_code: int,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.status_code = status_code
        self.headers = [] if headers is None else headers


@dataclass(slots=True, init=False)
class Trailers(Event):
    """Response trailers; they end the response (no ``EndBody`` follows)."""

    headers: list[tuple[bytes, bytes]]

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.stream_id = stream_id
        self.headers = headers


@dataclass(slots=True, init=False)
class ServerPush(Event):
    """Push ``path`` (with request ``headers``) as a response promised on ``stream_id``."""

    path: bytes
    headers: list[tuple[bytes, bytes]]

    def __init__(self, stream_id: int, path: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.stream_id = stream_id
        self.path = path
        self.headers = headers


@dataclass(slots=True, init=False)
class StreamClosed(Event):
    pass
