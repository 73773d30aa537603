"""Access and error logging with Hypercorn's public ``Logger`` API.

``Logger(config)`` owns two stdlib loggers, ``hypercorn.access`` and ``hypercorn.error``.

With ``log_format = "json"`` both write one JSON object per line through structlog's
renderer: every error/lifecycle record has ``timestamp``, ``level``, ``event`` (and
``exception`` with the traceback), and every request has the fields of :func:`access_fields`
(method, path, query, status, bytes, duration_ms, http_version, scheme, client after
trusted-proxy resolution, peer, user_agent, referer, request_id, worker, plus whatever the
application put in ``scope["extensions"]["hypercorn.log"]``). JSON encoding escapes control
characters.

With ``log_format = "text"``, access lines use ``config.access_log_format`` with Hypercorn's
(gunicorn-style) atoms, e.g.
``%(h)s`` remote address, ``%(r)s`` request line, ``%(s)s`` status, ``%({Header}i)s`` a request
header, ``%({Header}o)s`` a response header and ``%({Key}e)s`` a value from the scope's
``extensions["hypercorn.log"]`` mapping (the way an application adds fields to its access line).
Control characters in logged values are escaped so a request cannot forge log lines.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .typing import WWWScope

_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}
_CONTROL.update(
    {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"}
)


def escape(value: str) -> str:
    """Escape control characters, quotes and backslashes for a log line."""
    return value.translate(_CONTROL)


def json_formatter() -> logging.Formatter:
    """A stdlib formatter that renders records (and their ``extra`` fields) as JSON lines.
    (structlog is imported here, only when JSON logs are asked for: it costs ~2 MiB.)"""
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def _create_logger(
    name: str,
    target: logging.Logger | str | None,
    level: str | None,
    sys_default: Any,
    *,
    propagate: bool = True,
    json: bool = False,
    line_format: str = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
) -> logging.Logger | None:
    if isinstance(target, logging.Logger):
        return target
    if target:
        logger = logging.getLogger(name)
        for handler in logger.handlers:  # a previous Logger's (e.g. its open log file)
            handler.close()
        logger.handlers = [
            logging.StreamHandler(sys_default) if target == "-" else logging.FileHandler(target)
        ]
        logger.propagate = propagate
        formatter = logging.Formatter(line_format, "[%Y-%m-%d %H:%M:%S %z]")
        logger.handlers[0].setFormatter(json_formatter() if json else formatter)
        if level is not None:
            logger.setLevel(logging.getLevelName(level.upper()))
        return logger
    return None


class Logger:
    """The server's logger: access lines and error/lifecycle messages."""

    def __init__(self, config: Config) -> None:
        self.access_log_format = config.access_log_format
        self.json = config.log_format == "json"
        self.access_logger = _create_logger(
            "hypercorn.access",
            config.accesslog,
            "INFO",
            sys.stdout,
            propagate=False,
            json=self.json,
            line_format="%(message)s",  # the line is access_log_format alone
        )
        self.error_logger = _create_logger(
            "hypercorn.error", config.errorlog, config.loglevel, sys.stderr, json=self.json
        )
        if config.logconfig is not None:
            if config.logconfig.startswith("json:"):
                with open(config.logconfig[5:]) as file_:
                    logging.config.dictConfig(json.load(file_))
            elif config.logconfig.startswith("toml:"):
                from .settings import read_toml

                logging.config.dictConfig(read_toml(Path(config.logconfig[5:])))
            else:
                logging.config.fileConfig(config.logconfig, disable_existing_loggers=False)
        if config.logconfig_dict is not None:
            logging.config.dictConfig(config.logconfig_dict)

    async def access(
        self, request: WWWScope, response: Mapping[str, Any] | None, request_time: float
    ) -> None:
        """Log one request. ``response`` has ``status`` and ``headers`` (None if no response);
        the server also passes ``bytes`` (body bytes sent) and ``peer`` (the socket peer)."""
        if self.access_logger is None:
            return
        if self.json:
            fields = access_fields(request, response, request_time)
            self.access_logger.info(fields.pop("event"), extra=fields)
        else:
            self.access_logger.info(
                self.access_log_format, self.atoms(request, response, request_time)
            )

    async def critical(self, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.critical(message, *args, **kwargs)

    async def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.error(message, *args, **kwargs)

    async def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.warning(message, *args, **kwargs)

    async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.info(message, *args, **kwargs)

    async def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.debug(message, *args, **kwargs)

    async def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.exception(message, *args, **kwargs)

    async def log(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        if self.error_logger is not None:
            self.error_logger.log(level, message, *args, **kwargs)

    def atoms(
        self, request: WWWScope, response: Mapping[str, Any] | None, request_time: float
    ) -> AccessLogAtoms:
        """The atoms available to ``access_log_format``."""
        return AccessLogAtoms(request, response, request_time)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.error_logger, name)


def _header(headers: Any, name: bytes) -> str | None:
    for header_name, value in headers:
        if header_name == name:
            return str(value.decode("latin-1"))
    return None


def access_fields(
    request: WWWScope, response: Mapping[str, Any] | None, request_time: float
) -> dict[str, Any]:
    """The fields of one JSON access-log record."""
    headers = request["headers"]
    client = request.get("client")
    peer = response.get("peer") if response else None
    fields: dict[str, Any] = {
        "event": "websocket" if request["type"] == "websocket" else "request",
        "method": request.get("method", "GET"),
        "path": request["path"],
        "query": request["query_string"].decode("latin-1"),
        "status": response["status"] if response else None,
        "bytes": response.get("bytes", 0) if response else 0,
        "duration_ms": round(request_time * 1000, 3),
        "http_version": request.get("http_version", "1.1"),
        "scheme": request["scheme"],
        "client": client[0] if client else None,
        "peer": peer[0] if peer else None,
        "user_agent": _header(headers, b"user-agent"),
        "referer": _header(headers, b"referer"),
        "request_id": _header(headers, b"x-request-id") or uuid.uuid4().hex,
        "worker": os.getpid(),
    }
    extra = request.get("extensions", {}).get("hypercorn.log") or {}
    for key, value in extra.items():
        fields.setdefault(str(key), value)  # the app adds fields; it cannot rewrite ours
    return fields


class AccessLogAtoms(dict[str, str]):
    """The values of every access-log atom for one request, all escaped."""

    def __init__(
        self, request: WWWScope, response: Mapping[str, Any] | None, request_time: float
    ) -> None:
        super().__init__()
        for name, value in request["headers"]:
            self[f"{{{name.decode('latin-1').lower()}}}i"] = escape(value.decode("latin-1"))
        self._variables = request.get("extensions", {}).get("hypercorn.log") or {}
        protocol = f"HTTP/{request.get('http_version', '1.1')}"
        client = request.get("client")
        if client is None:
            remote_addr = None
        elif len(client) == 2:
            remote_addr = f"{client[0]}:{client[1]}"
        else:
            remote_addr = str(client[0])
        method = "GET" if request["type"] == "websocket" else request.get("method", "GET")
        query_string = request["query_string"].decode("latin-1")
        path_with_qs = request["path"] + ("?" + query_string if query_string else "")
        status_code = "-"
        status_phrase = "-"
        response_length = "-"
        if response is not None:
            for name, value in response.get("headers", []):
                self[f"{{{name.decode('latin-1').lower()}}}o"] = escape(value.decode("latin-1"))
                if name.lower() == b"content-length":
                    response_length = value.decode("latin-1")
            status_code = str(response["status"])
            try:
                status_phrase = HTTPStatus(response["status"]).phrase
            except ValueError:
                status_phrase = f"<unknown status code {response['status']}>"
            if "bytes" in response:
                response_length = str(response["bytes"])
        self.update(
            {
                "h": escape(remote_addr or "-"),
                "l": "-",
                "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
                "r": escape(f"{method} {request['path']} {protocol}"),
                "R": escape(f"{method} {path_with_qs} {protocol}"),
                "s": status_code,
                "st": status_phrase,
                "S": request["scheme"],
                "m": method,
                "U": escape(request["path"]),
                "Uq": escape(path_with_qs),
                "q": escape(query_string),
                "H": protocol,
                "b": response_length,
                "B": "0" if response_length == "-" else response_length,
                "f": self.get("{referer}i", "-"),
                "a": self.get("{user-agent}i", "-"),
                "T": str(int(request_time)),
                "D": str(int(request_time * 1_000_000)),
                "L": f"{request_time:.6f}",
                "p": f"<{os.getpid()}>",
            }
        )

    def __getitem__(self, key: str) -> str:
        if key.startswith("{"):
            if key.endswith("}e"):  # the app's log fields first, then the environment
                name = key[1:-2]
                value = self._variables.get(name, os.environ.get(name))
                return "-" if value is None else escape(str(value))
            key = key.lower()
        try:
            return super().__getitem__(key)
        except KeyError:
            return "-"
