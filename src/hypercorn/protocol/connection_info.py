"""What a connection knows about its transport (its own module, compiled in the compiled
build: the streams read it on every request)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConnectionInfo:
    """What a connection knows about its transport, for building ASGI scopes."""

    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    scheme: str = "http"  # "http" or "https"
    tls: dict[object, object] | None = None  # the ASGI ``tls`` extension, when TLS
    state: dict[str, Any] = field(default_factory=dict)  # lifespan state, copied per request
