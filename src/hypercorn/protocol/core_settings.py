"""The settings the protocol core reads on every request, copied out of the :class:`Config`.

Reading a field of the pydantic ``Config`` costs a dictionary lookup behind its
``__getattr__`` hook (about 400 machine instructions, measured with cachegrind), and the
HTTP/1.1 path read about twenty per request. A ``CoreSettings`` is a plain object (a C struct
in the compiled build): a connection reads ``config.core_settings`` once, hands it to its
streams, and reads the fields from there. ``Config.core_settings`` is made again after any
setting changes, so a change applies to the connections made after it; an open connection
keeps the settings it started with.

It also keeps the headers the server adds to every response (``default_headers``, a
:class:`~hypercorn._headers.DefaultHeaders`), made again each second for the Date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from .._headers import DefaultHeaders

if TYPE_CHECKING:
    from ..config import Config


class CoreSettings:
    """A snapshot of the settings read per request (see the module's docstring)."""

    __slots__ = (
        "body_timeout",
        "default_headers",
        "h11_max_incomplete_size",
        "h11_pass_raw_headers",
        "keep_alive_max_requests",
        "keep_alive_timeout",
        "max_app_queue_size",
        "max_request_body_size",
        "proxy_headers",
        "request_header_timeout",
        "root_path",
        "server_names",
        "source",
        "trusted_proxies",
    )

    def __init__(self, config: Config) -> None:
        self.source = config  # (Config.core_settings checks it: a model_copy shares private state)
        self.h11_max_incomplete_size: int = config.h11_max_incomplete_size
        self.h11_pass_raw_headers: bool = config.h11_pass_raw_headers
        self.keep_alive_max_requests: int = config.keep_alive_max_requests
        self.keep_alive_timeout: float = config.keep_alive_timeout
        self.request_header_timeout: Optional[float] = config.request_header_timeout
        # the request-body inactivity timeout: the shorter of request_body_timeout and
        # read_timeout (Hypercorn's name for it), when either is set
        timeouts = [t for t in (config.request_body_timeout, config.read_timeout) if t]
        self.body_timeout: Optional[float] = min(timeouts) if timeouts else None
        self.max_app_queue_size: int = config.max_app_queue_size
        self.max_request_body_size: Optional[int] = config.max_request_body_size
        self.proxy_headers: Literal["none", "x-forwarded", "forwarded"] = config.proxy_headers
        self.trusted_proxies: list[str] = config.trusted_proxies
        self.root_path: str = config.root_path
        self.server_names: list[str] = config.server_names
        self.default_headers = DefaultHeaders(config.response_headers)
