"""TLS listeners on every backend, with certificates made at test time by trustme."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tls = scope["extensions"].get("tls", {})
    body = f"{scope['scheme']}|{tls.get('tls_version')}|{len(tls.get('client_cert_chain', []))}"
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": body.encode()})


def test_https_with_tls_scope_extension(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(scope_app, certfile=tls_files["certfile"], keyfile=tls_files["keyfile"])
    assert server.url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=context) as client:
        response = client.get(server.url)
    scheme, version, chain = response.text.split("|")
    assert scheme == "https"
    assert int(version) in (0x0303, 0x0304)
    assert chain == "0"


def _negotiate(port: int, ca_file: str, offered: list[str]) -> str | None:
    import socket

    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(offered)
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.selected_alpn_protocol()


def test_alpn_offers_only_what_is_implemented(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(scope_app, certfile=tls_files["certfile"], keyfile=tls_files["keyfile"])
    assert _negotiate(server.port, tls_files["ca"], ["h2", "http/1.1"]) == "h2"
    assert _negotiate(server.port, tls_files["ca"], ["http/1.1"]) == "http/1.1"
    only_h1 = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        alpn_protocols=["spdy/3", "http/1.1"],
    )
    assert _negotiate(only_h1.port, tls_files["ca"], ["spdy/3", "http/1.1"]) == "http/1.1"


def test_mutual_tls_client_certificate(
    serve: Serve, tls_files: dict[str, str], ca: trustme.CA, tmp_path: Path
) -> None:
    server = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        ca_certs=tls_files["ca"],
        verify_mode=ssl.CERT_REQUIRED,
    )
    client_cert = ca.issue_cert("client@example.com")
    context = ssl.create_default_context(cafile=tls_files["ca"])
    client_cert.configure_cert(context)
    with httpx.Client(verify=context) as client:
        assert client.get(server.url).text.endswith("|1")
    anonymous = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=anonymous) as client, pytest.raises(httpx.HTTPError):
        client.get(server.url)
    # and the server is still serving after the rejected handshake
    with httpx.Client(verify=context) as client:
        assert client.get(server.url).status_code == 200


def test_plain_http_to_tls_port_does_not_hurt_others(
    serve: Serve, tls_files: dict[str, str]
) -> None:
    from tests.conftest import raw_exchange

    server = serve(scope_app, certfile=tls_files["certfile"], keyfile=tls_files["keyfile"])
    raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", timeout=3)
    context = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=context) as client:
        assert client.get(server.url).status_code == 200


def test_tls_min_version_is_enforced(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        tls_min_version="1.3",
    )
    old = ssl.create_default_context(cafile=tls_files["ca"])
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=old) as client, pytest.raises(httpx.ConnectError):
        client.get(server.url)
    modern = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=modern) as client:
        assert int(client.get(server.url).text.split("|")[1]) == 0x0304


def test_silent_client_is_dropped_after_ssl_handshake_timeout(
    serve: Serve, tls_files: dict[str, str]
) -> None:
    import socket
    import time

    server = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        ssl_handshake_timeout=0.3,
    )
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert sock.recv(1024) == b""  # never sent a ClientHello: closed by the server
    assert time.monotonic() - began < 3


def test_optional_client_certificate(
    serve: Serve, tls_files: dict[str, str], ca: trustme.CA
) -> None:
    server = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        ca_certs=tls_files["ca"],
        verify_mode="optional",
    )
    anonymous = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=anonymous) as client:
        assert client.get(server.url).text.endswith("|0")
    with_cert = ssl.create_default_context(cafile=tls_files["ca"])
    ca.issue_cert("client@example.com").configure_cert(with_cert)
    with httpx.Client(verify=with_cert) as client:
        assert client.get(server.url).text.endswith("|1")


def test_insecure_bind_beside_tls(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        insecure_bind=["127.0.0.1:0"],
    )
    secure, plain = server.urls
    assert secure.startswith("https://") and plain.startswith("http://")
    assert httpx.get(plain).text.startswith("http|")
    context = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=context) as client:
        assert client.get(secure).text.startswith("https|")
