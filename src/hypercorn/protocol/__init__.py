"""The sans-IO protocol core: bytes, events and the current time in; bytes out.

Nothing in this package imports asyncio, trio, socket, ssl or reads a clock; the backends in
``hypercorn.asyncio`` and ``hypercorn.trio`` drive it. A test enforces the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Protocol

from .connection_info import ConnectionInfo
from .http_stream import HTTPStream
from .selection import SUPPORTED_ALPN

if TYPE_CHECKING:
    from .ws_stream import AnyStream


class ProtocolConnection(Protocol):
    """What a backend drives: one instance per transport connection
    (:class:`hypercorn.protocol.connection.HTTPConnection`)."""

    @property
    def closed(self) -> bool:
        """True once the connection should be closed (after writing what is left)."""

    @property
    def http_version(self) -> str:
        """ "1.1" or "2": the protocol the connection turned out to speak."""

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its sending side."""

    def connection_lost(self) -> None:
        """The transport is gone: every stream is disconnected."""

    @property
    def backlogged(self) -> bool:
        """True when part of what was read is held back for the next turn of the event loop,
        so that one connection's burst of small frames does not keep every other connection
        waiting (``wants_read`` is False meanwhile, except on HTTP/2 for a WebSocket
        session's backlog: flow control holds that client back). The backend then calls
        :meth:`process_backlog` on a later turn, unless its writes are paused: a client that
        does not read its answers is not read for either."""

    def process_backlog(self, now: float) -> None:
        """Process the next turn's worth of what :attr:`backlogged` held back."""

    def data_to_send(self) -> bytes:
        """Take the bytes to write to the peer."""

    def chunks_to_send(self) -> Sequence[bytes]:
        """Take the bytes to write to the peer as the pieces they were made in (for a
        vectored write, e.g. ``writelines``: a large body is not copied to join it to its
        head). What :meth:`data_to_send` would have returned, joined."""

    def pop_new_streams(self) -> Sequence[AnyStream]:
        """Take the streams whose application call should now be started."""

    def pop_streams_to_cancel(self) -> Sequence[AnyStream]:
        """Take the streams whose application call must be cancelled (flood protection)."""

    def next_deadline(self, now: float) -> Optional[float]:
        """The time at which :meth:`handle_timer` must be called, if any. The backend calls
        this after every interaction, so idle periods that begin inside one start at ``now``."""

    def handle_timer(self, now: float) -> None:
        """Act on expired deadlines."""

    def begin_shutdown(self) -> None:
        """Stop taking new requests: close when idle, finish the ones in flight."""

    @property
    def wants_read(self) -> bool:
        """False while the application has not consumed what was already read."""

    @property
    def idle(self) -> bool:
        """True when no request (or WebSocket session) is in progress."""

    @property
    def multiplexed(self) -> bool:
        """True when several streams share the connection (HTTP/2): their output is best
        gathered into one write per turn of the event loop rather than one per response."""

    @property
    def client_done(self) -> bool:
        """True when the client has said it sends nothing more (HTTP/1.1 ``Connection:
        close``, HTTP/1.0) and nothing followed: the backend may close the socket at once
        instead of lingering, as no input can arrive to make the kernel reset it."""


__all__ = ["SUPPORTED_ALPN", "ConnectionInfo", "HTTPStream", "ProtocolConnection"]
