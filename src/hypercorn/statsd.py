"""``StatsdLogger``: a :class:`~hypercorn.logging.Logger` that also sends statsd metrics.

Used automatically when ``statsd_host`` is set (and ``logger_class`` is the default). Every
request sends ``hypercorn.requests`` (counter), ``hypercorn.request.status.<code>``
(counter) and ``hypercorn.request.duration`` (timer, ms); every critical/error/warning/
exception log line sends ``hypercorn.log.<level>``. Names get ``statsd_prefix`` (plus a dot)
in front; ``dogstatsd_tags`` (``key:value,key:value``) are added in DogStatsD's ``|#`` form.
Datagrams are fire-and-forget over UDP: a missing statsd server never slows a request.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from .logging import Logger

if TYPE_CHECKING:
    from .config import Config
    from .typing import WWWScope


class StatsdLogger(Logger):
    """Logs like :class:`Logger` and emits statsd/DogStatsD metrics."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        assert config.statsd_host is not None, "StatsdLogger needs statsd_host"
        host, _, port = config.statsd_host.rpartition(":")
        if not host:
            host, port = port, "8125"
        self.address = (host.strip("[]"), int(port or 8125))
        self.prefix = f"{config.statsd_prefix}." if config.statsd_prefix else ""
        self.tags = f"|#{config.dogstatsd_tags}" if config.dogstatsd_tags else ""
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        self.socket.setblocking(False)

    def __del__(self) -> None:
        self.socket.close()

    # ------------------------------------------------------------------ metrics
    def increment(self, name: str, value: int = 1, sampling_rate: float = 1.0) -> None:
        rate = f"|@{sampling_rate}" if sampling_rate != 1.0 else ""
        self._send(f"{self.prefix}{name}:{value}|c{rate}")

    def decrement(self, name: str, value: int = 1, sampling_rate: float = 1.0) -> None:
        self.increment(name, -value, sampling_rate)

    def gauge(self, name: str, value: float) -> None:
        self._send(f"{self.prefix}{name}:{value}|g")

    def histogram(self, name: str, value: float) -> None:
        self._send(f"{self.prefix}{name}:{value}|ms")

    def _send(self, line: str) -> None:
        try:
            self.socket.sendto(f"{line}{self.tags}".encode("ascii"), self.address)
        except OSError:
            pass  # metrics are best effort

    # ------------------------------------------------------------------ the Logger API
    async def access(
        self, request: WWWScope, response: Optional[Mapping[str, Any]], request_time: float
    ) -> None:
        await super().access(request, response, request_time)
        self.increment("hypercorn.requests")
        if response is not None:
            self.increment(f"hypercorn.request.status.{response['status']}")
        self.histogram("hypercorn.request.duration", round(request_time * 1000, 3))

    async def critical(self, message: str, *args: Any, **kwargs: Any) -> None:
        await super().critical(message, *args, **kwargs)
        self.increment("hypercorn.log.critical")

    async def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        await super().error(message, *args, **kwargs)
        self.increment("hypercorn.log.error")

    async def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        await super().warning(message, *args, **kwargs)
        self.increment("hypercorn.log.warning")

    async def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        await super().exception(message, *args, **kwargs)
        self.increment("hypercorn.log.exception")

    async def log(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        await super().log(level, message, *args, **kwargs)
        if level >= logging.WARNING:
            self.increment(f"hypercorn.log.{logging.getLevelName(level).lower()}")
