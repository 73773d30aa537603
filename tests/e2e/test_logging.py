"""Access and error logs as a user reads them: JSON lines (every field) and the text atoms."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hi"})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/crash":
        raise RuntimeError("crash for the error log")
    scope["extensions"]["hypercorn.log"] = {"user": "alice", "status": "app cannot override"}
    await send(
        {"type": "http.response.start", "status": 201, "headers": [(b"x-out", b"out-value")]}
    )
    await send({"type": "http.response.body", "body": b"twelve bytes"})


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_access_log_fields_over_http11_http2_and_websocket(
    serve: Serve, tmp_path: Path
) -> None:
    access = tmp_path / "access.log"
    server = serve(app, accesslog=str(access), log_format="json")
    headers = {"user-agent": "test-agent/1", "referer": "http://ref/", "x-request-id": "abc-123"}
    assert httpx.get(server.url + "/p?q=1", headers=headers).status_code == 201
    with httpx.Client(http1=False, http2=True) as client:
        client.get(server.url + "/h2")

    async def ws() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as socket:
            await socket.recv()

    asyncio.run(ws())
    server.stop()
    http11, http2, websocket = read_json_lines(access)
    assert set(http11) >= {
        "timestamp",
        "level",
        "event",
        "method",
        "path",
        "query",
        "status",
        "bytes",
        "duration_ms",
        "http_version",
        "scheme",
        "client",
        "peer",
        "user_agent",
        "referer",
        "request_id",
        "worker",
    }
    assert http11["event"] == "request" and http11["level"] == "info"
    assert (http11["method"], http11["path"], http11["query"]) == ("GET", "/p", "q=1")
    assert (http11["status"], http11["bytes"], http11["http_version"]) == (201, 12, "1.1")
    assert http11["scheme"] == "http"
    assert http11["client"] == http11["peer"] == "127.0.0.1"
    assert (http11["user_agent"], http11["referer"]) == ("test-agent/1", "http://ref/")
    assert http11["request_id"] == "abc-123"
    assert http11["worker"] == os.getpid()
    assert isinstance(http11["duration_ms"], float) and http11["duration_ms"] >= 0
    assert http11["user"] == "alice"  # added by the application
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", http11["timestamp"])
    assert http2["http_version"] == "2" and http2["path"] == "/h2"
    assert re.fullmatch(r"[0-9a-f]{32}", http2["request_id"])  # generated when not sent
    assert websocket["event"] == "websocket" and websocket["path"] == "/ws"
    assert websocket["status"] == 101


def test_json_logs_escape_control_characters(serve: Serve, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve(app, accesslog=str(access), log_format="json")
    # Control characters reach the log through the (percent-decoded) path; raw ones in a
    # header are refused with 400 before any application or log sees them.
    httpx.get(server.url + "/evil%0Ainjected%1B[31m", headers={"user-agent": "curious"})
    assert httpx.get(server.url, headers={"user-agent": "x\u001b[2J"}).status_code == 400
    server.stop()
    [record] = read_json_lines(access)  # still one line, still valid JSON
    assert record["path"] == "/evil\ninjected\x1b[31m"
    assert "\n" not in access.read_text().strip()


def test_json_error_log_with_traceback(serve: Serve, tmp_path: Path) -> None:
    errors = tmp_path / "error.log"
    server = serve(app, errorlog=str(errors), log_format="json")
    assert httpx.get(server.url + "/crash").status_code == 500
    server.stop()
    records = read_json_lines(errors)
    [crash] = [r for r in records if r["event"] == "Error in ASGI Framework"]
    assert crash["level"] == "error"
    assert "RuntimeError: crash for the error log" in crash["exception"]
    assert any(r["event"].startswith("Running on") for r in records)


def test_text_access_log_with_every_atom(serve: Serve, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    atoms = [
        "h",
        "l",
        "t",
        "r",
        "R",
        "s",
        "st",
        "S",
        "m",
        "U",
        "Uq",
        "q",
        "H",
        "b",
        "B",
        "f",
        "a",
        "T",
        "D",
        "L",
        "p",
    ]
    fmt = "|".join(f"{atom}=%({atom})s" for atom in atoms)
    fmt += "|in=%({X-In}i)s|out=%({x-out}o)s|env=%({user}e)s|missing=%({nope}i)s"
    server = serve(app, accesslog=str(access), access_log_format=fmt)
    httpx.get(
        server.url + "/path?x=1",
        headers={"X-In": "in\tvalue", "user-agent": "ua", "referer": "ref"},
    )
    server.stop()
    line = access.read_text().strip()
    values = dict(part.split("=", 1) for part in line.split("|"))
    assert values["h"].startswith("127.0.0.1:") and values["l"] == "-"
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", values["t"])
    assert values["r"] == "GET /path HTTP/1.1" and values["R"] == "GET /path?x=1 HTTP/1.1"
    assert (values["s"], values["st"], values["S"], values["m"]) == (
        "201",
        "Created",
        "http",
        "GET",
    )
    assert (values["U"], values["Uq"], values["q"], values["H"]) == (
        "/path",
        "/path?x=1",
        "x=1",
        "HTTP/1.1",
    )
    assert values["b"] == values["B"] == "12"
    assert (values["f"], values["a"]) == ("ref", "ua")
    assert values["T"] == "0" and int(values["D"]) >= 0 and float(values["L"]) >= 0
    assert values["p"] == f"<{os.getpid()}>"
    assert values["in"] == "in\\tvalue"  # control characters are escaped
    assert values["out"] == "out-value" and values["env"] == "alice"
    assert values["missing"] == "-"


def test_logconfig_json_toml_and_dict(tmp_path: Path) -> None:
    import logging

    from hypercorn.config import Config
    from hypercorn.logging import Logger

    for name, text in (
        (
            "log.json",
            json.dumps(
                {
                    "version": 1,
                    "disable_existing_loggers": False,
                    "loggers": {"from-json": {"level": "WARNING"}},
                }
            ),
        ),
        (
            "log.toml",
            'version = 1\ndisable_existing_loggers = false\n[loggers.from-toml]\nlevel = "ERROR"\n',
        ),
    ):
        path = tmp_path / name
        path.write_text(text)
        prefix = "json" if name.endswith("json") else "toml"
        Logger(Config(logconfig=f"{prefix}:{path}"))  # building it applies the config
    assert logging.getLogger("from-json").level == logging.WARNING
    assert logging.getLogger("from-toml").level == logging.ERROR
    Logger(
        Config(
            logconfig_dict={
                "version": 1,
                "disable_existing_loggers": False,
                "loggers": {"from-dict": {"level": "CRITICAL"}},
            }
        )
    )
    assert logging.getLogger("from-dict").level == logging.CRITICAL
