"""Utilities: application loading and wrapping, file watching, addresses, headers, shutdown.

Every name here is part of the public API documented in the seeds.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

# (defined in hypercorn._headers, which the compiled build compiles: they run per response)
from ._headers import build_and_validate_headers as build_and_validate_headers
from ._headers import filter_pseudo_headers as filter_pseudo_headers
from ._headers import suppress_body as suppress_body

if TYPE_CHECKING:
    from .config import Config
    from .typing import AppWrapper


class NoAppError(Exception):
    """The application could not be loaded; the message says what was not found."""


class ShutdownError(Exception):
    """Raised by :func:`raise_shutdown` when the shutdown trigger fires."""


class LifespanTimeoutError(Exception):
    """A lifespan stage ("startup" or "shutdown") did not complete in time."""

    def __init__(self, stage: str) -> None:
        super().__init__(
            f"Timeout whilst awaiting {stage}. Your application may not support the ASGI "
            f"Lifespan protocol correctly, alternatively the {stage}_timeout configuration "
            "is incorrect."
        )
        self.stage = stage


class LifespanFailureError(Exception):
    """The application reported ``lifespan.<stage>.failed``."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"Lifespan failure in {stage}. '{message}'")
        self.stage = stage
        self.message = message


class UnexpectedMessageError(Exception):
    """The application sent a message that is not valid in the current protocol state."""

    def __init__(self, state: Enum, message_type: str) -> None:
        super().__init__(f"Unexpected message type, {message_type} given the state {state}")
        self.state = state
        self.message_type = message_type


class FrameTooLargeError(Exception):
    """A protocol frame or message exceeded its configured size limit."""


# ----------------------------------------------------------------------------- application loading

_MODES = ("asgi", "wsgi")


def split_app_path(path: str) -> tuple[str | None, str, str]:
    """Split ``[asgi:|wsgi:]module[:expr]`` into ``(mode, module, expr)``; expr defaults to app."""
    mode: str | None = None
    head, sep, rest = path.partition(":")
    if sep and head in _MODES:
        mode, path = head, rest
    # A Windows drive letter or a path may contain ':'; the expression is after the last one
    # that follows the module part.
    module, sep, expr = path.rpartition(":")
    if not sep or not module or "/" in expr or "\\" in expr:
        module, expr = path, "app"
    return mode, module, expr or "app"


def _import_module(module_name: str, original: str) -> Any:
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
        file_path = Path(module_name)
        if file_path.suffix != ".py" and file_path.with_suffix(".py").exists():
            file_path = file_path.with_suffix(".py")
        if not file_path.exists():
            raise NoAppError(
                f"Cannot load application from '{original}': file {file_path} not found"
            )
        sys.path.insert(0, str(file_path.resolve().parent))
        module_name = file_path.stem
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if (
            error.name is not None
            and module_name.split(".")[0] == error.name.split(".")[0]
            and (module_name == error.name or module_name.startswith(error.name + "."))
        ):
            raise NoAppError(
                f"Cannot load application from '{original}': module '{module_name}' not found "
                f"(looked in the current directory and sys.path; set app_dir to add a directory)"
            ) from None
        raise


def _evaluate(module: Any, expr: str, original: str) -> Any:
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise NoAppError(
            f"Cannot load application from '{original}': '{expr}' is not a valid "
            "attribute or call expression"
        ) from None
    call: ast.Call | None = None
    if isinstance(node, ast.Call):
        call, node = node, node.func
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise NoAppError(
            f"Cannot load application from '{original}': '{expr}' must be a name, "
            "a dotted name or a call such as create_app()"
        )
    names.append(node.id)
    obj = module
    for index, name in enumerate(reversed(names)):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            owner = ".".join(reversed(names[len(names) - index :])) or module.__name__
            raise NoAppError(
                f"Cannot load application from '{original}': '{owner}' has no attribute '{name}'"
            ) from None
    if call is not None:
        try:
            args = [ast.literal_eval(arg) for arg in call.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        except ValueError:
            raise NoAppError(
                f"Cannot load application from '{original}': only literal "
                "arguments are allowed in the factory call"
            ) from None
        obj = obj(*args, **kwargs)
    return obj


def load_application(path: str, wsgi_max_body_size: int) -> AppWrapper:
    """Import the application named by ``[asgi:|wsgi:]module[:expr]`` and wrap it.

    ``module`` is a dotted module name or a path to a ``.py`` file; ``expr`` (default ``app``)
    is an attribute, a dotted attribute or a factory call with literal arguments such as
    ``create_app()``. The result is an ASGI or WSGI wrapper (see :func:`wrap_app`, which
    passes a wrapper through unchanged). Raises :class:`NoAppError` naming what was not found.
    """
    mode, module_name, expr = split_app_path(path)
    if not module_name:
        raise NoAppError(f"Cannot load application from '{path}': no module given")
    module = _import_module(module_name, path)
    app = _evaluate(module, expr, path)
    if app is None or not callable(app):
        raise NoAppError(
            f"Cannot load application from '{path}': '{expr}' is {type(app).__name__}, "
            "not an ASGI or WSGI application"
        )
    return wrap_app(app, wsgi_max_body_size, mode)


def wrap_app(app: Any, wsgi_max_body_size: int, mode: str | None = None) -> AppWrapper:
    """Wrap ``app`` in an :class:`ASGIWrapper` or :class:`WSGIWrapper`.

    ``mode`` forces "asgi" or "wsgi"; otherwise :func:`is_asgi` decides. An object that is
    already a wrapper is returned unchanged.
    """
    from .app_wrappers import ASGIWrapper, WSGIWrapper

    if isinstance(app, (ASGIWrapper, WSGIWrapper)):
        return app
    if mode is None:
        mode = "asgi" if is_asgi(app) else "wsgi"
    if mode == "asgi":
        return ASGIWrapper(app)
    if mode == "wsgi":
        return WSGIWrapper(app, wsgi_max_body_size)
    raise ValueError(f"Unknown mode {mode!r}: expected 'asgi' or 'wsgi'")


def is_asgi(app: Any) -> bool:
    """True when ``app`` is an ASGI 3 application (an async callable), false for WSGI."""
    while isinstance(app, partial):
        app = app.func
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004 - we want the bound __call__ itself
    while isinstance(call, partial):
        call = call.func
    return inspect.iscoroutinefunction(call)


# ----------------------------------------------------------------------------- files and processes


def files_to_watch() -> dict[Path, float]:
    """Map the source file of every imported module to its modification time."""
    result: dict[Path, float] = {}
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if not filename:
            continue
        path = Path(filename)
        try:
            result[path] = path.stat().st_mtime
        except OSError:
            continue
    return result


def check_for_updates(files: dict[Path, float]) -> bool:
    """True if any watched file changed or disappeared since ``files`` was taken."""
    for path, last_mtime in files.items():
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return True
        if mtime > last_mtime:
            return True
    return False


def write_pid_file(pid_path: str) -> None:
    """Write this process's PID to ``pid_path``."""
    with open(pid_path, "w") as file_:
        file_.write(f"{os.getpid()}")


# ----------------------------------------------------------------------------- addresses


def parse_socket_addr(family: int, address: Any) -> tuple[str, int] | None:
    """Return ``(host, port)`` for an IPv4/IPv6 address, ``None`` for other families and for
    no address (uvloop reports none for a peer that reset the connection before it was
    handed over)."""
    if address is None:
        return None
    if family in (socket.AF_INET, socket.AF_INET6):
        return (address[0], address[1])
    return None


def repr_socket_addr(family: int, address: Any) -> str:
    """Format an address for humans: ``1.2.3.4:80``, ``[::1]:80`` or a unix path."""
    if family == socket.AF_INET:
        return f"{address[0]}:{address[1]}"
    if family == socket.AF_INET6:
        return f"[{address[0]}]:{address[1]}"
    if family == getattr(socket, "AF_UNIX", None):
        return f"unix:{address}"
    return f"{address}"


def bound_urls(sockets: Any) -> list[str]:
    """``http://host:port``, ``https://...`` or ``http+unix:/path`` for each listening socket
    of a :class:`~hypercorn.config.Sockets`, then ``https://host:port (QUIC)`` for each QUIC
    socket."""
    urls = []
    for scheme, group in (("https", sockets.secure_sockets), ("http", sockets.insecure_sockets)):
        for sock in group:
            address = repr_socket_addr(sock.family, sock.getsockname())
            unix = sock.family == getattr(socket, "AF_UNIX", None)
            urls.append(f"{scheme}+{address}" if unix else f"{scheme}://{address}")
    for sock in sockets.quic_sockets:
        urls.append(f"https://{repr_socket_addr(sock.family, sock.getsockname())} (QUIC)")
    return urls


# ----------------------------------------------------------------------------- headers


def _host_of(request: Any) -> str | None:
    headers = getattr(request, "headers", request)
    value: Any = None
    if isinstance(headers, Mapping):
        value = headers.get("host", headers.get(b"host"))
    else:
        for name, header_value in headers:
            if name in (b"host", "host", b":authority"):
                value = header_value
                break
    if value is None:
        return None
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def valid_server_name(config: Config, request: Any) -> bool:
    """True if the request's Host is one of ``config.server_names`` (or none are configured).

    Names match exactly or by a leading wildcard (``*.example.com``); the port is ignored,
    and so is case.
    """
    if not config.server_names:
        return True
    host = _host_of(request)
    if host is None:
        return False
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    host = host.lower().rstrip(".")
    for name in config.server_names:
        name = name.lower()
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


# ----------------------------------------------------------------------------- shutdown


async def raise_shutdown(shutdown_event: Callable[..., Awaitable[Any]]) -> None:
    """Await ``shutdown_event`` then raise :class:`ShutdownError`."""
    await shutdown_event()
    raise ShutdownError()


async def check_multiprocess_shutdown_event(
    shutdown_event: Any, sleep: Callable[[float], Awaitable[Any]]
) -> None:
    """Return once a ``multiprocessing`` event is set, polling with ``sleep``."""
    while True:
        if shutdown_event.is_set():
            return
        await sleep(0.1)
