"""Listening on host:port, [v6]:port, unix:/path, fd://N, and several at once."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from hypercorn.config import Config, Sockets
from tests.conftest import RunningServer, hello_app

Serve = Callable[..., RunningServer]


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_and_ipv4_binds_together(serve: Serve) -> None:
    server = serve(hello_app, bind=["127.0.0.1:0", "[::1]:0"])
    assert len(server.urls) == 2
    for url in server.urls:
        assert httpx.get(url).text == "Hello, world!"
    assert server.urls[1].startswith("http://[::1]:")


def test_unix_socket_bind(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "hypercorn.sock"
    path.touch()  # a stale file must not stop the bind only if it is a socket
    path.unlink()
    server = serve(hello_app, bind=[f"unix:{path}"], umask=0o077)
    assert server.urls == [f"http+unix:{path}"]
    assert (path.stat().st_mode & 0o777) == 0o700
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport) as client:
        response = client.get("http://localhost/")
    assert response.text == "Hello, world!"


def test_fd_bind(serve: Serve) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        serve(hello_app, bind=[f"fd://{listener.fileno()}"])
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!"
    finally:
        listener.detach()  # the server owns the descriptor now


def test_fd_bind_of_wrong_type_is_rejected() -> None:
    from hypercorn.config import SocketTypeError

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(SocketTypeError):
            Config(bind=[f"fd://{udp.fileno()}"]).create_sockets()
    finally:
        udp.close()


def test_create_sockets_sorts_secure_and_insecure() -> None:
    config = Config(bind=["127.0.0.1:0"], insecure_bind=["127.0.0.1:0"])
    sockets = config.create_sockets()
    try:
        assert isinstance(sockets, Sockets)
        assert len(sockets.insecure_sockets) == 2 and sockets.secure_sockets == []
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()


def test_address_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot bind 127.0.0.1:{port}"):
            Config(bind=[f"127.0.0.1:{port}"]).create_sockets()
