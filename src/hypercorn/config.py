"""The server configuration: one pydantic model, the single source of truth.

Every key keeps Hypercorn's name, type and default, so code written for Hypercorn's
``Config`` runs unchanged; the appliance keys follow. Assignment is validated. The CLI flags,
``HYPERCORN_*`` environment variables and TOML keys are all derived from the fields here (see
:mod:`hypercorn.settings` and :mod:`hypercorn.__main__`); a field's ``json_schema_extra`` holds
its Hypercorn CLI flags where they differ from ``--key-name``.

``Config()`` gives the built-in defaults only; the layered loading used by the CLI
(defaults < TOML < environment < flags) is :func:`hypercorn.settings.load_config`.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import logging
import os
import socket
import ssl
import stat
import types
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from time import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, PrivateAttr, field_validator
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .utils import repr_socket_addr

if TYPE_CHECKING:
    from .logging import Logger
    from .protocol.core_settings import CoreSettings

BYTES = 1
OCTETS = 1
SECONDS = 1.0
MiB = 1024 * 1024

DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(l)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

__all__ = ["Config", "SocketTypeError", "Sockets", "time"]


class SocketTypeError(Exception):
    """An inherited ``fd://`` socket is not of the type the listener needs."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f'Unexpected socket type, wanted "{socket.SocketKind(expected)}" got '
            f'"{socket.SocketKind(actual)}"'
        )


@dataclass
class Sockets:
    """The bound listening sockets, by kind."""

    secure_sockets: list[socket.socket]
    insecure_sockets: list[socket.socket]
    quic_sockets: list[socket.socket]
    admin_sockets: list[socket.socket] = field(default_factory=list)
    # QUIC addresses each worker binds for itself (SO_REUSEPORT): a shared UDP socket would
    # hand a connection's datagrams to whichever worker reads first.
    quic_per_worker: list[str] = field(default_factory=list)

    def separate_quic_sockets(self) -> None:
        """Close the supervisor's host:port QUIC sockets and record their addresses, so each
        worker binds its own (:meth:`bind_worker_quic_sockets`). The supervisor must not keep
        one open: the kernel would route some clients to a socket nobody reads. ``fd://``
        sockets cannot be bound again and stay shared."""
        kept = []
        for sock in self.quic_sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                self.quic_per_worker.append(repr_socket_addr(sock.family, sock.getsockname()))
                sock.close()
            else:
                kept.append(sock)
        self.quic_sockets = kept

    def bind_worker_quic_sockets(self, config: Config) -> None:
        if self.quic_per_worker:
            self.quic_sockets += config._create_sockets(self.quic_per_worker, socket.SOCK_DGRAM)

    def close(self) -> None:
        """Close every socket (closing one twice is harmless)."""
        for sock in [
            *self.secure_sockets,
            *self.insecure_sockets,
            *self.quic_sockets,
            *self.admin_sockets,
        ]:
            sock.close()


def _cli(*flags: str) -> JsonDict:
    return {"flags": list(flags)}


_NOT_CLI: JsonDict = {"cli": False}


def field_extra(name: str) -> dict[str, Any]:
    """The ``json_schema_extra`` of a Config field: ``flags`` (CLI spellings) and ``cli``
    (False for keys that only code can set)."""
    extra = Config.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def parse_bind(bind: str) -> tuple[str, str | int | tuple[str, int]]:
    """Parse one bind string into ``("unix", path)``, ``("fd", n)`` or ``("inet", (host, port))``.

    Raises ``ValueError`` with a message saying what is wrong.
    """
    if bind.startswith("unix:"):
        path = bind[5:]
        if not path:
            raise ValueError(f"bind {bind!r}: unix: needs a path")
        return "unix", path
    if bind.startswith("fd://"):
        try:
            return "fd", int(bind[5:])
        except ValueError:
            raise ValueError(f"bind {bind!r}: fd:// needs a file descriptor number") from None
    if bind.startswith("["):
        host, sep, rest = bind[1:].partition("]")
        if not sep:
            raise ValueError(f"bind {bind!r}: missing ']' after the IPv6 address")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
        if port_text is None:
            raise ValueError(f"bind {bind!r}: expected ':port' after ']'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bind {bind!r}: {host!r} is not an IPv6 address") from None
    else:
        if bind.count(":") > 1:
            raise ValueError(f"bind {bind!r}: write IPv6 addresses in brackets, e.g. [::1]:8000")
        host, _, port_text = bind.partition(":")
        if not host:
            raise ValueError(f"bind {bind!r}: no host given (use 0.0.0.0 for every interface)")
        _check_host(bind, host)
    port = 8000
    if port_text:
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bind {bind!r}: port {port_text!r} is not a number") from None
        if not 0 <= port <= 65535:
            raise ValueError(f"bind {bind!r}: port {port} is out of range 0-65535")
    return "inet", (host, port)


def _check_host(bind: str, host: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if host == "localhost":
        return
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ValueError(
            f"bind {bind!r}: host {host!r} is not an IP address or a name that resolves"
        ) from None


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    return value


class Config(BaseSettings):
    """Server configuration. See the README's configuration reference for every key."""

    model_config = SettingsConfigDict(
        validate_assignment=True,
        extra="forbid",
        arbitrary_types_allowed=True,
        env_prefix="HYPERCORN_",
    )

    # ------------------------------------------------------------------ Hypercorn's keys
    access_log_format: str = Field(
        DEFAULT_ACCESS_LOG_FORMAT,
        description="Access log line format (text log_format), with Hypercorn's %(x)s atoms.",
        json_schema_extra=_cli("--access-logformat"),
    )
    accesslog: str | logging.Logger | None = Field(
        None,
        description="Access log destination: '-' for stdout, a file path, or off when unset.",
        json_schema_extra=_cli("--access-logfile"),
    )
    alpn_protocols: list[str] = Field(
        ["h2", "http/1.1"], description="ALPN protocols offered on TLS listeners, in order."
    )
    alt_svc_headers: list[str] = Field(
        [], description="Alt-Svc header values to send (automatic when a QUIC bind exists)."
    )
    application_path: str | None = Field(
        None,
        description="Path of the application module (set by the CLI).",
        json_schema_extra=_NOT_CLI,
    )
    backlog: int = Field(100, ge=1, description="Maximum number of pending connections.")
    bind: list[str] = Field(
        ["127.0.0.1:8000"],
        description="Addresses to listen on: host:port, [v6]:port, unix:/path or fd://N.",
        json_schema_extra=_cli("-b", "--bind"),
    )
    ca_certs: str | None = Field(None, description="CA bundle used to verify client certificates.")
    certfile: str | None = Field(None, description="Server certificate chain (PEM).")
    ciphers: str = Field("ECDHE+AESGCM", description="OpenSSL cipher list for TLS 1.2.")
    daemon: bool = Field(
        False, description="Detach into the background.", json_schema_extra=_cli("-D", "--daemon")
    )
    debug: bool = Field(False, description="Enable debug behaviour (asyncio debug mode).")
    dogstatsd_tags: str = Field("", description="DogStatsD tags, comma separated key:value.")
    errorlog: str | logging.Logger | None = Field(
        "-",
        description="Error log destination: '-' for stderr, a file path, or off when unset.",
        json_schema_extra=_cli("--error-logfile", "--log-file"),
    )
    graceful_timeout: float = Field(
        3.0 * SECONDS, ge=0, description="Seconds to let in-flight requests finish on shutdown."
    )
    group: int | None = Field(
        None, description="Group id to own unix sockets.", json_schema_extra=_cli("-g", "--group")
    )
    h11_max_incomplete_size: int = Field(
        16 * 1024 * BYTES, ge=64, description="Largest HTTP/1.1 request head in bytes (else 431)."
    )
    h11_pass_raw_headers: bool = Field(
        False, description="Pass HTTP/1.1 header names to the app with their original case."
    )
    http1_parser: Literal["auto", "h11", "httptools"] = Field(
        "auto",
        description="HTTP/1.1 parser: httptools when installed (auto), or force one.",
    )
    h2_max_concurrent_streams: int = Field(100, ge=1, description="HTTP/2 concurrent streams.")
    h2_max_header_list_size: int = Field(
        2**16 * OCTETS, ge=1024, description="Largest HTTP/2 header list in octets."
    )
    h2_max_inbound_frame_size: int = Field(
        2**14 * OCTETS, ge=2**14, le=2**24 - 1, description="Largest HTTP/2 frame accepted."
    )
    include_date_header: bool = Field(True, description="Add a Date header to responses.")
    include_server_header: bool = Field(True, description="Add a Server header to responses.")
    insecure_bind: list[str] = Field(
        [], description="Plain-HTTP addresses to listen on in addition to TLS binds."
    )
    keep_alive_max_requests: int = Field(
        1000, ge=1, description="Requests served on one connection before it is closed."
    )
    keep_alive_timeout: float = Field(
        5.0 * SECONDS,
        gt=0,
        description="Seconds an idle keep-alive connection is kept open.",
        json_schema_extra=_cli("--keep-alive"),
    )
    keyfile: str | None = Field(None, description="Server private key (PEM).")
    keyfile_password: str | None = Field(None, description="Password for an encrypted keyfile.")
    logconfig: str | None = Field(
        None,
        description="Logging config file: ini path, json:path or toml:path.",
        json_schema_extra=_cli("--log-config"),
    )
    logconfig_dict: dict[str, Any] | None = Field(
        None, description="logging.config.dictConfig mapping.", json_schema_extra=_NOT_CLI
    )
    logger_class: type = Field(
        default_factory=lambda: _default_logger_class(),
        description="Logger class used for access and error logs.",
        json_schema_extra=_NOT_CLI,
    )
    loglevel: str = Field(
        "INFO", description="Error log level.", json_schema_extra=_cli("--log-level")
    )
    max_app_queue_size: int = Field(
        10, ge=1, description="Request body chunks buffered for the app before reading pauses."
    )
    max_requests: int | None = Field(
        None, ge=1, description="Requests a worker serves before it is recycled."
    )
    max_requests_jitter: int = Field(0, ge=0, description="Random extra requests for recycling.")
    pid_path: str | None = Field(
        None,
        description="File to write the server's PID to.",
        json_schema_extra=_cli("-p", "--pid"),
    )
    quic_bind: list[str] = Field([], description="UDP addresses to serve HTTP/3 on.")
    read_timeout: float | None = Field(
        None, gt=0, description="Seconds to wait for data from a client before closing."
    )
    root_path: str = Field("", description="ASGI root_path for an app mounted under a prefix.")
    server_names: list[str] = Field(
        [],
        description="Host names served; requests for other hosts get 404.",
        json_schema_extra=_cli("--server-name"),
    )
    shutdown_timeout: float = Field(
        60.0 * SECONDS, gt=0, description="Seconds to wait for lifespan shutdown."
    )
    ssl_handshake_timeout: float = Field(
        60.0 * SECONDS, gt=0, description="Seconds allowed for a TLS handshake."
    )
    startup_timeout: float = Field(
        60.0 * SECONDS, gt=0, description="Seconds to wait for lifespan start-up."
    )
    statsd_host: str | None = Field(None, description="host:port of a statsd server.")
    statsd_prefix: str = Field("", description="Prefix for statsd metric names.")
    umask: int | None = Field(
        None, description="umask for unix sockets (octal).", json_schema_extra=_cli("-m", "--umask")
    )
    use_reloader: bool = Field(
        False, description="Restart when source files change.", json_schema_extra=_cli("--reload")
    )
    user: int | None = Field(
        None, description="User id to own unix sockets.", json_schema_extra=_cli("-u", "--user")
    )
    verify_flags: ssl.VerifyFlags | None = Field(None, description="ssl.VerifyFlags value.")
    verify_mode: ssl.VerifyMode | None = Field(
        None, description="Client certificate checking: none, optional or required."
    )
    websocket_max_message_size: int = Field(
        16 * MiB * BYTES, ge=1, description="Largest WebSocket message in bytes (else 1009)."
    )
    websocket_ping_interval: float | None = Field(
        None, gt=0, description="Seconds between server pings on WebSockets."
    )
    worker_class: Literal["asyncio", "uvloop", "trio"] = Field(
        "asyncio",
        description="Event loop: asyncio, uvloop or trio.",
        json_schema_extra=_cli("-k", "--worker-class"),
    )
    workers: int = Field(
        1,
        ge=0,
        description="Worker processes (0: serve in this process).",
        json_schema_extra=_cli("-w", "--workers"),
    )
    wsgi_max_body_size: int = Field(
        16 * MiB * BYTES, ge=0, description="Largest WSGI request body in bytes (else 413)."
    )

    # ------------------------------------------------------------------ appliance keys
    app: str | None = Field(
        None,
        description="Application: [asgi:|wsgi:]module[:expr], e.g. main:app.",
        json_schema_extra=_cli("--app"),
    )
    app_dir: str | None = Field(None, description="Directory put first on sys.path.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log format for access and error logs: text or json."
    )
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1", "unix"],
        description="Peers whose forwarded headers are trusted: IPs, CIDRs, unix or *.",
    )
    proxy_headers: Literal["none", "x-forwarded", "forwarded"] = Field(
        "none", description="Forwarded headers honoured from trusted proxies."
    )
    https_redirect: bool = Field(False, description="Redirect plain-HTTP requests to HTTPS.")
    mounts: dict[str, str] = Field(
        {}, description="Path prefix to application path, served through the dispatcher."
    )
    max_request_body_size: int | None = Field(
        None, ge=0, description="Largest request body in bytes for any app (else 413)."
    )
    request_header_timeout: float | None = Field(
        30.0, gt=0, description="Seconds to receive a complete request head (else 408)."
    )
    request_body_timeout: float | None = Field(
        60.0,
        gt=0,
        description="Seconds of request-body inactivity (HTTP/1.1) before the request aborts.",
    )
    max_concurrent_requests: int | None = Field(
        None, ge=1, description="In-flight requests per worker; beyond it 503 + Retry-After."
    )
    max_connections: int | None = Field(
        10000,
        ge=1,
        description="Open connections per worker, for TCP and for QUIC each; beyond it new "
        "ones are refused (logged).",
    )
    websocket_ping_timeout: float | None = Field(
        20.0, gt=0, description="Seconds to wait for a pong before closing a WebSocket."
    )
    websocket_compression: bool = Field(True, description="Offer permessage-deflate.")
    admin_bind: str | None = Field(
        None, description="Address of the admin listener (/livez, /readyz, /metrics)."
    )
    shutdown_delay: float = Field(
        0.0, ge=0, description="Seconds between SIGTERM and closing listeners (readyz 503)."
    )
    tls_min_version: Literal["1.2", "1.3"] = Field("1.2", description="Minimum TLS version.")

    _log: Logger | None = PrivateAttr(None)
    _date_cache: tuple[int, bytes] = PrivateAttr((0, b""))
    _alt_svc: list[tuple[bytes, bytes]] | None = PrivateAttr(None)
    _core_settings: CoreSettings | None = PrivateAttr(None)  # (see core_settings)
    # response_headers() without Date, per (protocol, secure); reset when a setting changes.
    _static_headers: dict[tuple[str, bool], list[tuple[bytes, bytes]]] = PrivateAttr(
        default_factory=dict
    )

    # ------------------------------------------------------------------ sources
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # ``Config()`` is Hypercorn's: the built-in defaults only. Layering the environment and
        # files is explicit (``settings.load_config``) so each value's source can be reported.
        return (init_settings,)

    # ------------------------------------------------------------------ validators
    @field_validator("bind", "insecure_bind", "quic_bind", mode="before")
    @classmethod
    def _bind_list(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    parse_bind(item)
        return value

    @field_validator(
        "alpn_protocols", "alt_svc_headers", "server_names", "trusted_proxies", mode="before"
    )
    @classmethod
    def _str_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in ("*", "unix"):
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not an IP address, a CIDR, 'unix' or '*'"
                    ) from None
        return value

    @field_validator("admin_bind")
    @classmethod
    def _check_admin_bind(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bind(value)
        return value

    @field_validator("verify_mode", mode="before")
    @classmethod
    def _verify_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = {
                "none": ssl.CERT_NONE,
                "optional": ssl.CERT_OPTIONAL,
                "required": ssl.CERT_REQUIRED,
            }
            key = value.strip().lower().removeprefix("cert_")
            if key in names:
                return names[key]
            if key.isdigit():
                return ssl.VerifyMode(int(key))
            raise ValueError("expected none, optional or required")
        return value

    @field_validator("verify_flags", mode="before")
    @classmethod
    def _verify_flags(cls, value: Any) -> Any:
        if isinstance(value, str):
            flags = ssl.VerifyFlags(0)
            for part in value.replace("|", ",").split(","):
                part = part.strip()
                if not part:
                    continue
                if part.isdigit():
                    flags |= ssl.VerifyFlags(int(part))
                elif part.upper() in ssl.VerifyFlags.__members__:
                    flags |= ssl.VerifyFlags[part.upper()]
                else:
                    raise ValueError(f"unknown verify flag {part!r}")
            return flags
        return value

    @field_validator("umask", "user", "group", mode="before")
    @classmethod
    def _int_maybe_octal(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text, 8) if text.startswith("0") and text.isdigit() else int(text, 0)
            except ValueError:
                raise ValueError("expected an integer (octal with a leading 0 for umask)") from None
        return value

    @field_validator("loglevel")
    @classmethod
    def _loglevel(cls, value: str) -> str:
        if not isinstance(logging.getLevelName(value.upper()), int):
            raise ValueError(f"unknown log level {value!r}")
        return value.upper()

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix in value:
            if not prefix.startswith("/"):
                raise ValueError(f"mount prefix {prefix!r} must start with '/'")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _LOG_FIELDS:
            self._log = None
        if not name.startswith("_"):  # derived caches follow the settings they come from
            self.__pydantic_private__.update(_empty_caches())  # type: ignore[union-attr]

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled (for a worker process) without the caches derived from the settings: the
        logger (its handlers do not pickle) and the core's snapshot (a compiled class that
        does not unpickle); each process makes its own on first use."""
        state: dict[Any, Any] = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private:
            state["__pydantic_private__"] = {**private, "_log": None, **_empty_caches()}
        return state

    # ------------------------------------------------------------------ Hypercorn's methods
    @property
    def log(self) -> Logger:
        """The logger (an instance of ``logger_class``) built from this configuration."""
        # Private attributes are read from pydantic's dict directly: its __getattr__
        # fallback costs microseconds, and this runs per request.
        log = self.__pydantic_private__["_log"]  # type: ignore[index]
        if log is None:
            logger_class = self.logger_class
            if self.statsd_host is not None and logger_class is _default_logger_class():
                from .statsd import StatsdLogger

                logger_class = StatsdLogger
            log = self._log = logger_class(self)
        return log  # type: ignore[no-any-return]

    @property
    def core_settings(self) -> CoreSettings:
        """The settings the protocol core reads per request, as a plain (compiled) object:
        made again after a setting changes (see hypercorn.protocol.core_settings)."""
        settings = self.__pydantic_private__["_core_settings"]  # type: ignore[index]
        if settings is None or settings.source is not self:
            from .protocol.core_settings import CoreSettings

            settings = self._core_settings = CoreSettings(self)
        return settings  # type: ignore[no-any-return]

    @property
    def ssl_enabled(self) -> bool:
        """True when a certificate and key are configured."""
        return self.certfile is not None and self.keyfile is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """Build the server TLS context, or ``None`` when TLS is not configured."""
        if not self.ssl_enabled:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = (
            ssl.TLSVersion.TLSv1_3 if self.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
        )
        context.set_ciphers(self.ciphers)
        context.options |= ssl.OP_NO_COMPRESSION
        context.load_cert_chain(
            certfile=str(self.certfile), keyfile=str(self.keyfile), password=self.keyfile_password
        )
        from .protocol import SUPPORTED_ALPN

        context.set_alpn_protocols([p for p in self.alpn_protocols if p in SUPPORTED_ALPN])
        if self.ca_certs is not None:
            context.load_verify_locations(self.ca_certs)
        if self.verify_mode is not None:
            context.verify_mode = self.verify_mode
        if self.verify_flags is not None:
            context.verify_flags = self.verify_flags
        return context

    def create_sockets(self) -> Sockets:
        """Bind (and, for TCP, listen on) every configured address."""
        if self.ssl_enabled:
            secure = self._create_sockets(self.bind)
            insecure = self._create_sockets(self.insecure_bind)
        else:
            secure = []
            insecure = self._create_sockets(self.bind + self.insecure_bind)
        quic = self._create_sockets(self.quic_bind, socket.SOCK_DGRAM)
        admin = self._create_sockets([self.admin_bind]) if self.admin_bind else []
        return Sockets(secure, insecure, quic, admin)

    def _create_sockets(
        self, binds: list[str], type_: int = socket.SOCK_STREAM
    ) -> list[socket.socket]:
        sockets: list[socket.socket] = []
        for bind in binds:
            kind, target = parse_bind(bind)
            if kind == "fd":
                assert isinstance(target, int)
                sock = socket.socket(fileno=target)
                if sock.type != type_:
                    sock.detach()
                    raise SocketTypeError(type_, sock.type)
            elif kind == "unix":
                assert isinstance(target, str)
                sock = self._unix_socket(target, type_)
            else:
                assert isinstance(target, tuple)
                host, port = target
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                if host == "localhost":
                    family = socket.AF_INET
                    host = "127.0.0.1"
                sock = socket.socket(family, type_)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if type_ == socket.SOCK_DGRAM and hasattr(socket, "SO_REUSEPORT"):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    sock.bind((host, port))
                except OSError as error:
                    sock.close()
                    raise OSError(error.errno, f"cannot bind {bind}: {error.strerror}") from None
            sock.setblocking(False)
            if type_ == socket.SOCK_STREAM:
                sock.listen(self.backlog)
            sockets.append(sock)
        return sockets

    def _unix_socket(self, path: str, type_: int) -> socket.socket:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # a stale socket left by a previous run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, type_)
        old_umask = os.umask(self.umask) if self.umask is not None else None
        try:
            sock.bind(path)
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        if self.user is not None or self.group is not None:
            os.chown(
                path,
                -1 if self.user is None else self.user,
                -1 if self.group is None else self.group,
            )
        return sock

    def response_headers(self, protocol: str, secure: bool = False) -> list[tuple[bytes, bytes]]:
        """The headers the server adds to every response: Date, Server and Alt-Svc.

        ``alt_svc_headers`` go on every response when configured; otherwise, with a QUIC
        listener, ``h3=":<port>"`` is advertised on TLS responses over HTTP/1.1 and HTTP/2.
        """
        cache = self.__pydantic_private__["_static_headers"]  # type: ignore[index]
        static = cache.get((protocol, secure))
        if static is None:  # once per protocol: this runs for every response
            static = []
            if self.include_server_header:
                static.append((b"server", f"hypercorn-{protocol}".encode("ascii")))
            if self.alt_svc_headers:
                for alt_svc_header in self.alt_svc_headers:
                    static.append((b"alt-svc", alt_svc_header.encode()))
            elif secure and protocol != "h3" and self.quic_bind:
                static += self.automatic_alt_svc()
            cache[(protocol, secure)] = static
        if self.include_date_header:
            return [(b"date", self.date_header()), *static]
        return list(static)

    def default_headers(
        self, protocol: str, secure: bool = False
    ) -> tuple[tuple[bytes, bytes], ...]:
        """:meth:`response_headers` as one shared tuple, built again when the second (and so
        the Date) changes: the stream adds these to every response (kept by
        :attr:`core_settings`, which the streams call directly)."""
        return self.core_settings.default_headers.get(protocol, secure)

    def automatic_alt_svc(self) -> list[tuple[bytes, bytes]]:
        """``Alt-Svc`` for the QUIC listeners' ports (a port 0, fd:// or unix: bind has no
        port to advertise; set ``alt_svc_headers`` for those, or for a published port)."""
        alt_svc = self.__pydantic_private__["_alt_svc"]  # type: ignore[index]
        if alt_svc is None:
            ports = []
            for bind in self.quic_bind:
                kind, target = parse_bind(bind)
                if kind == "inet" and isinstance(target, tuple) and target[1]:
                    ports.append(target[1])
            value = ", ".join(f'h3=":{port}"; ma=86400' for port in dict.fromkeys(ports))
            alt_svc = self._alt_svc = [(b"alt-svc", value.encode("ascii"))] if value else []
        return alt_svc  # type: ignore[no-any-return]

    def create_quic_configuration(self) -> Any:
        """The aioquic server configuration for the QUIC listeners (HTTP/3 over TLS 1.3)."""
        from aioquic.h3.connection import H3_ALPN
        from aioquic.quic.configuration import QuicConfiguration

        from .protocol.h3 import STREAM_WINDOW

        configuration = QuicConfiguration(
            alpn_protocols=H3_ALPN,
            is_client=False,
            max_datagram_frame_size=None,
            idle_timeout=self.keep_alive_timeout,
            max_stream_data=STREAM_WINDOW,
            max_data=4 * STREAM_WINDOW,
        )
        assert self.certfile is not None
        configuration.load_cert_chain(self.certfile, self.keyfile, self.keyfile_password)
        if self.ca_certs is not None:
            configuration.load_verify_locations(self.ca_certs)
        if self.verify_mode is not None:
            configuration.verify_mode = self.verify_mode
        return configuration

    def date_header(self) -> bytes:
        """The current IMF-fixdate, cached for the second (``hypercorn.config.time`` is read
        each call so tests can replace it)."""
        second = int(time())
        cached = self.__pydantic_private__["_date_cache"]  # type: ignore[index]
        if cached[0] != second or not cached[1]:
            cached = self._date_cache = (second, formatdate(second, usegmt=True).encode("ascii"))
        return cached[1]  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ alternative constructors
    @classmethod
    def from_mapping(cls, mapping: dict[str, Any] | None = None, **kwargs: Any) -> Config:
        """Create a Config from a mapping and/or keyword arguments (unknown keys are errors)."""
        from .settings import flatten_tables

        values: dict[str, Any] = {}
        if mapping is not None:
            values.update(mapping)
        values.update(kwargs)
        return cls(**flatten_tables(values))

    @classmethod
    def from_toml(cls, filename: str | os.PathLike[str]) -> Config:
        """Create a Config from a TOML file of top-level keys (and optional tables)."""
        from .settings import read_toml

        return cls.from_mapping(read_toml(Path(filename)))

    @classmethod
    def from_pyfile(cls, filename: str | os.PathLike[str]) -> Config:
        """Create a Config from the module-level names of a Python file that are config keys."""
        path = Path(filename)
        spec = importlib.util.spec_from_file_location("hypercorn_config_file", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"Cannot load config file {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return cls.from_object(module)

    @classmethod
    def from_object(cls, instance: object | str) -> Config:
        """Create a Config from an object's (or ``"module.name"``'s) attributes that are keys."""
        if isinstance(instance, str):
            module_name, _, attr = instance.rpartition(".")
            try:
                instance = importlib.import_module(instance)
            except ImportError:
                instance = getattr(importlib.import_module(module_name), attr)
        if isinstance(instance, dict):
            mapping = instance
        else:
            mapping = {
                key: getattr(instance, key)
                for key in dir(instance)
                if not key.startswith("_")
                and not isinstance(getattr(instance, key), types.ModuleType)
            }
        return cls.from_mapping({k: v for k, v in mapping.items() if k in cls.model_fields})


def _empty_caches() -> dict[str, Any]:
    """The private caches derived from the settings, empty: after a setting changes, and in a
    pickled copy."""
    return {"_alt_svc": None, "_core_settings": None, "_static_headers": {}}


_LOG_FIELDS = {
    "accesslog",
    "errorlog",
    "loglevel",
    "logconfig",
    "logconfig_dict",
    "access_log_format",
    "logger_class",
    "log_format",
    "statsd_host",
    "statsd_prefix",
    "dogstatsd_tags",
}


def _default_logger_class() -> type:
    from .logging import Logger

    return Logger
