"""Connection-level events exchanged between the I/O backends and the protocol layer.

``RawData`` carries bytes read from or to be written to a connection (with the peer
``address`` for datagram sockets), ``Closed`` says the connection has ended and ``Updated``
says whether it has become idle (no request in flight), which drives keep-alive timeouts.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Any


class Event(ABC):  # noqa: B024 - an abstract marker base, as in the public API
    """Base class of every connection event."""


@dataclass(frozen=True)
class RawData(Event):
    """Bytes received from, or to be sent to, the peer."""

    data: bytes
    address: Any | None = None


@dataclass(frozen=True)
class Closed(Event):
    """The connection has closed (by either side, or on error or timeout)."""


@dataclass(frozen=True)
class Updated(Event):
    """The connection's activity changed: ``idle`` is true when no request is in flight."""

    idle: bool
