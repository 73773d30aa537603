"""The QUIC endpoint: every HTTP/3 connection on one UDP socket, sans-IO.

Datagrams in (with the peer's address and the time), datagrams out; streams to start and
cancel; one deadline for the backend's timer. The backend owns the socket and the clock.

Routing: a datagram goes to the connection owning its destination connection ID (each
connection registers the IDs it issues and forgets retired ones). A datagram for an unknown ID
starts a connection only if it is a full-size Initial packet (RFC 9000 14.1) of a supported
version; an unsupported version is answered with Version Negotiation; anything else is dropped
(a packet for a connection another worker holds, or one that has ended: the client's idle timer
deals with it). An Initial that does not decrypt leaves no state behind. At most
``max_connections`` connections exist at once; Initial packets beyond that are dropped, so a
flood of handshakes costs one header parse each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from aioquic._buffer import Buffer
from aioquic.quic.events import ConnectionIdIssued, ConnectionIdRetired
from aioquic.quic.packet import (
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from .connection_info import ConnectionInfo
from .h3 import BoundedQuicConnection, H3Session
from .ws_stream import AnyStream

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

    from ..config import Config

SMALLEST_INITIAL_DATAGRAM = 1200  # RFC 9000 14.1
# The ASGI tls extension for HTTP/3: QUIC always runs TLS 1.3.
_TLS13 = 0x0304


class QuicEndpoint:
    """The HTTP/3 connections of one UDP socket."""

    def __init__(
        self,
        config: Config,
        quic_config: QuicConfiguration,
        server: tuple[str, int | None] | None,
        state: dict[str, Any],
        max_connections: int | None,
    ) -> None:
        self.config = config
        self.quic_config = quic_config
        self.server = server
        self.state = state
        self.max_connections = max_connections
        self.refused = 0  # Initial packets dropped because max_connections was reached
        self._by_cid: dict[bytes, H3Session] = {}
        self._sessions: set[H3Session] = set()
        self._dirty: set[H3Session] = set()
        self._outbox: list[tuple[bytes, Any]] = []
        self._new_streams: list[AnyStream] = []
        self._shutting_down = False

    # ---------------------------------------------------------------- backend interface
    @property
    def connections(self) -> int:
        return len(self._sessions)

    @property
    def closed(self) -> bool:
        """True once shutting down and every connection has ended."""
        return self._shutting_down and not self._sessions

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        try:
            header = pull_quic_header(
                Buffer(data=data), host_cid_length=self.quic_config.connection_id_length
            )
        except ValueError:
            return  # not a QUIC packet
        session = self._by_cid.get(header.destination_cid)
        if session is None:
            session = self._new_session(header, data, addr)
            if session is None:
                return
            session.quic.receive_datagram(data, addr, now)
            if not session.quic.decrypted_a_packet():
                self._remove(session)  # a forged or corrupt Initial: no state is kept for it
                return
        else:
            session.quic.receive_datagram(data, addr, now)
        self._process(session, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        """Take the datagrams (with destination addresses) to send now."""
        datagrams, self._outbox = self._outbox, []
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            for session in dirty:
                datagrams += session.quic.datagrams_to_send(now)
                self._process(session, now, touched=False)  # sending can end a connection
        return datagrams

    def pop_new_streams(self) -> Sequence[AnyStream]:
        if not self._new_streams:
            return ()
        streams, self._new_streams = self._new_streams, []
        return [stream for stream in streams if not stream.disconnected]

    def pop_streams_to_cancel(self) -> Sequence[AnyStream]:
        return ()  # QUIC's own stream limits bound resets; nothing is cancelled by force

    def next_deadline(self, now: float) -> Optional[float]:
        deadline: Optional[float] = None
        for session in self._sessions:
            for candidate in (session.quic.get_timer(), session.next_deadline(now)):
                if candidate is not None and (deadline is None or candidate < deadline):
                    deadline = candidate
        return deadline

    def handle_timer(self, now: float) -> None:
        for session in list(self._sessions):
            timer = session.quic.get_timer()
            if timer is not None and timer <= now:
                session.quic.handle_timer(now)
                self._dirty.add(session)
            ws_deadline = session.next_deadline(now)
            if ws_deadline is not None and ws_deadline <= now:
                session.handle_timer(now)
                self._dirty.add(session)
            self._process(session, now)

    def begin_shutdown(self, now: float) -> None:
        """Refuse new connections; each connection closes (GOAWAY, CONNECTION_CLOSE) once its
        requests are done."""
        self._shutting_down = True
        for session in list(self._sessions):
            session.begin_shutdown(now)
            self._dirty.add(session)

    def connection_lost(self) -> None:
        """The socket is gone: every stream is disconnected."""
        for session in list(self._sessions):
            session.connection_lost()
            self._remove(session)

    def mark_dirty(self, session: H3Session) -> None:
        self._dirty.add(session)

    # ---------------------------------------------------------------- internals
    def _new_session(self, header: Any, data: bytes, addr: Any) -> Optional[H3Session]:
        if (
            header.packet_type != QuicPacketType.VERSION_NEGOTIATION
            and header.version is not None
            and header.version not in self.quic_config.supported_versions
        ):
            self._outbox.append(
                (
                    encode_quic_version_negotiation(
                        source_cid=header.destination_cid,
                        destination_cid=header.source_cid,
                        supported_versions=self.quic_config.supported_versions,
                    ),
                    addr,
                )
            )
            return None
        if header.packet_type != QuicPacketType.INITIAL or len(data) < SMALLEST_INITIAL_DATAGRAM:
            return None
        if self._shutting_down:
            return None
        if self.max_connections is not None and len(self._sessions) >= self.max_connections:
            self.refused += 1
            return None
        quic = BoundedQuicConnection(
            configuration=self.quic_config,
            original_destination_connection_id=header.destination_cid,
            max_streams=self.config.h2_max_concurrent_streams,
        )
        info = ConnectionInfo(
            client=(str(addr[0]), int(addr[1])),
            server=self.server,
            scheme="https",
            tls={
                "server_cert": None,
                "client_cert_chain": [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": _TLS13,
                "cipher_suite": None,
                "cipher_name": None,
            },
            state=self.state,
        )
        session = H3Session(self.config, info, quic, self.mark_dirty)
        self._sessions.add(session)
        session.cids.update((header.destination_cid, quic.host_cid))
        for cid in session.cids:
            self._by_cid[cid] = session
        return session

    def _process(self, session: H3Session, now: float, touched: bool = True) -> None:
        """Hand a connection's QUIC events to its session; keep the routing table current."""
        quic = session.quic
        while True:
            event = quic.next_event()
            if event is None:
                break
            if isinstance(event, ConnectionIdIssued):
                self._by_cid[event.connection_id] = session
                session.cids.add(event.connection_id)
            elif isinstance(event, ConnectionIdRetired):
                if self._by_cid.get(event.connection_id) is session:
                    del self._by_cid[event.connection_id]
                session.cids.discard(event.connection_id)
            session.quic_event(event, now)
        session.after_events()
        if touched:
            self._dirty.add(session)
        if session.has_new_streams:
            self._new_streams += session.pop_new_streams()
        if session.terminated:
            self._remove(session)

    def _remove(self, session: H3Session) -> None:
        self._sessions.discard(session)
        self._dirty.discard(session)
        for cid in session.cids:
            if self._by_cid.get(cid) is session:
                del self._by_cid[cid]
        session.cids.clear()
