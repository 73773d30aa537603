"""The connection the backends drive: it picks HTTP/1.1 or HTTP/2 and delegates to it.

- ALPN ``h2`` on TLS: HTTP/2 from the first byte.
- Otherwise the first bytes are compared with the HTTP/2 connection preface: a client that
  starts with it gets HTTP/2 ("prior knowledge", what proxies use for h2c); anything else is
  HTTP/1.1.
- An HTTP/1.1 request with ``Upgrade: h2c`` is answered ``101`` by the h11 adapter, which
  reports the switch as a result (``upgrade``); this object then hands the request and any
  bytes after it to a new HTTP/2 adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Union

from .events import Request
from .h1common import HTTP11Base
from .h11 import H11Connection
from .selection import H2_PREFACE as PREFACE

try:
    from .h1fast import FastH11Connection
except ImportError:  # httptools is not installed
    FastH11Connection = None  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from ..config import Config
    from .connection_info import ConnectionInfo
    from .h2 import H2Connection
    from .ws_stream import AnyStream


def http11_adapter(config: Config) -> type[H11Connection] | type[FastH11Connection]:
    """The HTTP/1.1 adapter ``http1_parser`` asks for: httptools when installed ("auto")."""
    choice = config.http1_parser
    if choice == "h11" or (choice == "auto" and FastH11Connection is None):
        return H11Connection
    if FastH11Connection is None:
        raise RuntimeError("http1_parser = 'httptools' but httptools is not installed")
    return FastH11Connection


class HTTPConnection:
    """One client connection, whichever HTTP version it speaks.

    ``inner`` is the adapter in use; it changes only inside :meth:`receive_data`, so a driver
    may call it directly for everything else (the delegating methods here cost a frame each,
    several times a request).
    """

    def __init__(
        self, config: Config, info: ConnectionInfo, now: float, alpn: Optional[str] = None
    ) -> None:
        self.config = config
        self.info = info
        self.inner: Union[H11Connection, FastH11Connection, H2Connection]
        self._http2 = False
        if alpn == "h2":
            self.inner = self._h2(now)
            self._sniffing = False
        else:
            self.inner = http11_adapter(config)(config, info, now)
            self._sniffing = True
        self._sniffed = b""

    @property
    def http_version(self) -> str:
        return "2" if self._http2 else "1.1"

    def _h2(
        self, now: float, upgrade: Optional[tuple[bytes, Request]] = None, preamble: bytes = b""
    ) -> H2Connection:
        # h2 (and hpack) are imported on the first HTTP/2 connection: a server that never
        # sees one does not pay their memory.
        from .h2 import H2Connection

        self._http2 = True
        return H2Connection(self.config, self.info, now, upgrade=upgrade, preamble=preamble)

    def receive_data(self, data: bytes, now: float) -> None:
        if self._sniffing:
            self._sniffed += data
            if data and len(self._sniffed) < len(PREFACE) and PREFACE.startswith(self._sniffed):
                return  # not enough bytes to tell yet
            self._sniffing = False
            data, self._sniffed = self._sniffed, b""
            if data.startswith(PREFACE):
                self.inner = self._h2(now)
        inner = self.inner
        inner.receive_data(data, now)
        if not isinstance(inner, HTTP11Base) or inner.upgrade is None:
            return
        # The 101 (and anything before it) goes out ahead of the HTTP/2 preface.
        switch_output = inner.data_to_send()
        remaining = inner.unprocessed_data()
        self.inner = self._h2(now, upgrade=inner.upgrade, preamble=switch_output)
        if remaining:
            self.inner.receive_data(remaining, now)

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def connection_lost(self) -> None:
        self.inner.connection_lost()

    @property
    def backlogged(self) -> bool:
        return self.inner.backlogged

    def process_backlog(self, now: float) -> None:
        self.inner.process_backlog(now)

    def data_to_send(self) -> bytes:
        return self.inner.data_to_send()

    def chunks_to_send(self) -> Sequence[bytes]:
        return self.inner.chunks_to_send()

    def pop_new_streams(self) -> Sequence[AnyStream]:
        return self.inner.pop_new_streams()

    def pop_streams_to_cancel(self) -> Sequence[AnyStream]:
        return self.inner.pop_streams_to_cancel()

    def next_deadline(self, now: float) -> Optional[float]:
        return self.inner.next_deadline(now)

    def handle_timer(self, now: float) -> None:
        self.inner.handle_timer(now)

    def begin_shutdown(self) -> None:
        self.inner.begin_shutdown()

    @property
    def wants_read(self) -> bool:
        return self.inner.wants_read

    @property
    def idle(self) -> bool:
        return self.inner.idle

    @property
    def multiplexed(self) -> bool:
        return self.inner.multiplexed

    @property
    def client_done(self) -> bool:
        return self.inner.client_done
