"""ASGI middleware: path dispatch, HTTP to HTTPS redirects, proxy headers, WSGI mounting."""

from __future__ import annotations

from .dispatcher import DispatcherMiddleware
from .http_to_https import HTTPToHTTPSRedirectMiddleware
from .proxy_fix import ProxyFixMiddleware
from .wsgi import AsyncioWSGIMiddleware, TrioWSGIMiddleware

__all__ = [
    "AsyncioWSGIMiddleware",
    "DispatcherMiddleware",
    "HTTPToHTTPSRedirectMiddleware",
    "ProxyFixMiddleware",
    "TrioWSGIMiddleware",
]
