"""``make certs`` produces material strict clients accept: curl and Python's default context."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, hello_app

Serve = Callable[..., RunningServer]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev_certs(tmp_path: Path) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "certs" / "make_certs.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return tmp_path


def test_dev_certificates_work_with_strict_clients(serve: Serve, dev_certs: Path) -> None:
    server = serve(
        hello_app, certfile=str(dev_certs / "server.pem"), keyfile=str(dev_certs / "server-key.pem")
    )
    port = server.port
    context = ssl.create_default_context(cafile=str(dev_certs / "ca.pem"))
    for host in ("localhost", "127.0.0.1"):
        with httpx.Client(verify=context, http2=True) as client:
            response = client.get(f"https://{host}:{port}/")
        assert response.text == "Hello, world!" and response.http_version == "HTTP/2"
    assert not (dev_certs / "ca-key.pem").exists()
    assert (dev_certs / "server-key.pem").stat().st_mode & 0o077 == 0
    if shutil.which("curl"):
        result = subprocess.run(
            ["curl", "-sS", "--cacert", str(dev_certs / "ca.pem"), f"https://localhost:{port}/"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.stdout == "Hello, world!", result.stderr


def test_dev_client_certificate_for_mtls(serve: Serve, dev_certs: Path) -> None:
    server = serve(
        hello_app,
        certfile=str(dev_certs / "server.pem"),
        keyfile=str(dev_certs / "server-key.pem"),
        ca_certs=str(dev_certs / "ca.pem"),
        verify_mode=ssl.CERT_REQUIRED,
    )
    context = ssl.create_default_context(cafile=str(dev_certs / "ca.pem"))
    context.load_cert_chain(str(dev_certs / "client.pem"), str(dev_certs / "client-key.pem"))
    with httpx.Client(verify=context) as client:
        assert client.get(f"https://localhost:{server.port}/").status_code == 200


def test_encrypted_key_with_password_from_a_file(dev_certs: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from hypercorn.settings import ConfigError, load_config

    key = serialization.load_pem_private_key((dev_certs / "server-key.pem").read_bytes(), None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    env = {
        "HYPERCORN_CERTFILE": str(dev_certs / "server.pem"),
        "HYPERCORN_KEYFILE": str(encrypted),
        "HYPERCORN_KEYFILE_PASSWORD_FILE": str(secret),
    }
    config, _, _ = load_config(None, None, env)
    assert config.create_ssl_context() is not None
    secret.write_text("wrong\n")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_config(None, None, env)
