"""Which protocols this server can speak (kept apart so every adapter can import it)."""

from __future__ import annotations

# ALPN protocols the server implements; ``alpn_protocols`` is filtered by it so a client is
# never offered a protocol it would then fail to get.
SUPPORTED_ALPN = ("h2", "http/1.1")

# The HTTP/2 connection preface (RFC 9113 3.4), which a prior-knowledge h2c client sends first.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
