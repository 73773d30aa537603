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


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    with open(cert, "wb") as file_:
        for blob in leaf.cert_chain_pems:
            file_.write(blob.bytes())
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return {"certfile": str(cert), "keyfile": str(key), "ca": str(ca_path)}


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
