"""Which protocols this server can speak (kept apart so every adapter can import it)."""

from __future__ import annotations

# ALPN protocols the server implements; ``alpn_protocols`` is filtered by it so a client is
# never offered a protocol it would then fail to get.
SUPPORTED_ALPN = ("h2", "http/1.1")
