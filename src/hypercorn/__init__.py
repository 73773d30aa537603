"""An ASGI and WSGI server with Hypercorn's public API."""

from __future__ import annotations

from .__about__ import __version__
from .config import Config

__all__ = ["Config", "__version__"]
