"""WebSockets end to end on every backend, with the `websockets` client library (ws://, wss://)
and a raw h2 + wsproto client for RFC 8441 over HTTP/2."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


class Recorder:
    """What the application saw, readable from the test thread."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.disconnected = threading.Event()

    def record(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["type"] == "websocket.disconnect":
            self.disconnected.set()

    @property
    def disconnect(self) -> dict[str, Any]:
        assert self.disconnected.wait(5), self.messages
        return self.messages[-1]


def echo_app(recorder: Recorder | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        while True:
            message = await receive()
            if recorder is not None:
                recorder.record(message)
            if message["type"] == "websocket.connect":
                wanted = [p for p in scope["subprotocols"] if p == "chat"]
                await send(
                    {
                        "type": "websocket.accept",
                        "subprotocol": wanted[0] if wanted else None,
                        "headers": [(b"x-extra", b"yes")],
                    }
                )
            elif message["type"] == "websocket.receive":
                text = message.get("text")
                if text == "close-4001":
                    await send({"type": "websocket.close", "code": 4001, "reason": "custom"})
                    await send({"type": "websocket.send", "text": "ignored after close"})
                elif text == "crash":
                    raise RuntimeError("app crashed")
                else:
                    await send(
                        {"type": "websocket.send", "text": text, "bytes": message.get("bytes")}
                    )
            else:
                return

    return app


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_echo_text_binary_subprotocol_and_headers(serve: Serve) -> None:
    server = serve(echo_app())

    async def client() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{server.port}/path?q=1", subprotocols=["chat"]
        ) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-extra"] == "yes"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"

    run(client())


def test_fragmented_message_arrives_whole(serve: Serve) -> None:
    recorder = Recorder()
    server = serve(echo_app(recorder))

    async def client() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send(["frag", "men", "ted"])  # an iterable is sent as fragments
            assert await ws.recv() == "fragmented"

    run(client())
    assert {"type": "websocket.receive", "text": "fragmented"} in recorder.messages


def test_close_code_and_reason_fidelity_both_ways(serve: Serve) -> None:
    recorder = Recorder()
    server = serve(echo_app(recorder))

    async def client_closes() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.close(1000, "bye")

    run(client_closes())
    assert recorder.disconnect == {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}

    async def app_closes() -> tuple[int | None, str | None]:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("close-4001")
            with pytest.raises(ConnectionClosed):
                await ws.recv()  # the message sent after the close is ignored
            assert ws.protocol.close_rcvd is not None
            return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason

    assert run(app_closes()) == (4001, "custom")


def test_app_crash_closes_with_1011(serve: Serve) -> None:
    server = serve(echo_app())

    async def client() -> int | None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("crash")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None

    assert run(client()) == 1011


def test_server_shutdown_closes_with_1001(serve: Serve) -> None:
    recorder = Recorder()
    server = serve(echo_app(recorder))
    codes: list[int | None] = []

    async def client() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("hi")
            await ws.recv()
            threading.Thread(target=server.stop).start()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            codes.append(ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None)

    run(client())
    assert codes == [1001]
    assert recorder.disconnect["code"] == 1001


def test_denial_with_websocket_http_response_and_403(serve: Serve) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        if scope["path"] == "/custom":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"go away"})
        else:
            await send({"type": "websocket.close"})

    server = serve(app)

    async def attempt(path: str) -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}{path}"):
                pass
        return info.value.response

    custom = run(attempt("/custom"))
    assert custom.status_code == 401 and custom.body == b"go away"
    assert run(attempt("/")).status_code == 403


def test_message_size_limit_closes_with_1009(serve: Serve) -> None:
    recorder = Recorder()
    server = serve(echo_app(recorder), websocket_max_message_size=1000)

    async def client() -> int | None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("x" * 999)
            assert await ws.recv() == "x" * 999
            await ws.send("x" * 2000)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None

    assert run(client()) == 1009
    assert recorder.disconnect["code"] == 1009


@pytest.mark.parametrize("enabled", [True, False])
def test_compression_can_be_switched(serve: Serve, enabled: bool) -> None:
    server = serve(echo_app(), websocket_compression=enabled)

    async def client() -> list[str]:
        async with websockets.connect(
            f"ws://127.0.0.1:{server.port}/", compression="deflate"
        ) as ws:
            await ws.send("compress me " * 100)
            assert await ws.recv() == "compress me " * 100
            return [extension.name for extension in ws.protocol.extensions]

    assert run(client()) == (["permessage-deflate"] if enabled else [])


def test_ten_mib_message(serve: Serve) -> None:
    server = serve(echo_app(), websocket_max_message_size=32 * 1024 * 1024)
    payload = bytes(range(256)) * (40 * 1024)  # 10 MiB

    async def client() -> bytes:
        async with websockets.connect(
            f"ws://127.0.0.1:{server.port}/", max_size=None, compression=None
        ) as ws:
            await ws.send(payload)
            return await ws.recv()  # type: ignore[return-value]

    assert run(client()) == payload


def test_dead_peer_detected_by_ping_timeout(serve: Serve) -> None:
    recorder = Recorder()
    server = serve(echo_app(recorder), websocket_ping_interval=0.2, websocket_ping_timeout=0.3)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        # read the 101 and then the pings, never answering them
        assert recorder.disconnect == {
            "type": "websocket.disconnect",
            "code": 1006,
            "reason": "ping timeout",
        }


def test_wss_echo(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(echo_app(), certfile=tls_files["certfile"], keyfile=tls_files["keyfile"])
    context = ssl.create_default_context(cafile=tls_files["ca"])

    async def client() -> str:
        async with websockets.connect(f"wss://127.0.0.1:{server.port}/", ssl=context) as ws:
            await ws.send("secure")
            return await ws.recv()  # type: ignore[return-value]

    assert run(client()) == "secure"


def test_bad_handshake_gets_400_or_426(serve: Serve) -> None:
    from tests.conftest import raw_exchange

    server = serve(echo_app())
    base = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    no_key = raw_exchange(server.port, base + b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert no_key.startswith(b"HTTP/1.1 400 ")
    old = raw_exchange(
        server.port,
        base + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    assert old.startswith(b"HTTP/1.1 426 ") and b"sec-websocket-version: 13" in old


def test_thousand_concurrent_connections(serve: Serve) -> None:
    server = serve(echo_app())

    async def one(index: int, ready: asyncio.Event, opened: list[int]) -> str:
        async with websockets.connect(
            f"ws://127.0.0.1:{server.port}/", open_timeout=30, compression=None
        ) as ws:
            opened.append(index)
            if len(opened) == 1000:
                ready.set()
            await ready.wait()  # all 1000 are open at the same time
            await ws.send(f"m{index}")
            return await ws.recv()  # type: ignore[return-value]

    async def main() -> list[str]:
        ready = asyncio.Event()
        opened: list[int] = []
        return await asyncio.wait_for(
            asyncio.gather(*(one(i, ready, opened) for i in range(1000))), 60
        )

    assert run(main()) == [f"m{i}" for i in range(1000)]


# ---------------------------------------------------------------------------- over HTTP/2


def open_h2_websocket(client: Any) -> tuple[int, dict[bytes, bytes]]:
    """RFC 8441 on a RawH2Client: the stream id and the response headers."""
    import h2.events
    import h2.settings

    client.read_until(
        lambda evs: any(
            isinstance(e, h2.events.RemoteSettingsChanged)
            and h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL in e.changed_settings
            for e in evs
        )
    )
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream_id,
        [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":path", b"/chat"),
            (b":authority", b"localhost"),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-protocol", b"chat"),
        ],
    )
    client.flush()
    events = client.read_until(
        lambda evs: any(isinstance(e, h2.events.ResponseReceived) for e in evs)
    )
    [response] = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    return stream_id, dict(response.headers)


class H2Messages:
    """A ``read_until`` predicate: the WebSocket messages in the DATA read so far."""

    def __init__(self, ws: Any, count: int, seen: int) -> None:
        self.ws, self.count = ws, count
        self.seen = seen  # events read before
        self.texts: list[str] = []

    def __call__(self, events: list[Any]) -> bool:
        import h2.events
        from wsproto.events import TextMessage

        data = [e.data for e in events[self.seen :] if isinstance(e, h2.events.DataReceived)]
        self.seen = len(events)
        self.ws.receive_data(b"".join(data))
        self.texts += [e.data for e in self.ws.events() if isinstance(e, TextMessage)]
        return len(self.texts) >= self.count


def test_websocket_over_http2_extended_connect(serve: Serve) -> None:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import CloseConnection, TextMessage

    from tests.e2e.h2client import RawH2Client

    recorder = Recorder()
    server = serve(echo_app(recorder))
    client = RawH2Client(server.port)
    try:
        stream_id, headers = open_h2_websocket(client)
        assert headers[b":status"] == b"200"
        assert headers[b"sec-websocket-protocol"] == b"chat"
        ws = Connection(ConnectionType.CLIENT)
        client.conn.send_data(stream_id, ws.send(TextMessage(data="over h2")))
        client.flush()
        echoed = H2Messages(ws, 1, len(client.events))
        client.read_until(echoed)
        assert echoed.texts == ["over h2"]
        client.conn.send_data(stream_id, ws.send(CloseConnection(code=1000, reason="done")))
        client.flush()
        assert recorder.disconnect == {
            "type": "websocket.disconnect",
            "code": 1000,
            "reason": "done",
        }
    finally:
        client.close()


def test_websocket_over_http2_burst_is_echoed_whole(serve: Serve) -> None:
    """600 pings, then 2,000 messages, in one burst: more than a turn's worth of frames and
    far more than the application's queue, so the session parses in steps; each step must
    come, on every backend, without the client sending anything more (the connection goes
    on reading: the driver has to come back for the pings by itself, and trio's reader is
    waiting for input when the application's receive() makes room)."""
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import Ping, TextMessage

    from tests.e2e.h2client import RawH2Client

    server = serve(echo_app())
    client = RawH2Client(server.port)
    try:
        stream_id, _ = open_h2_websocket(client)
        ws = Connection(ConnectionType.CLIENT)
        data = b"".join(ws.send(Ping()) for _ in range(600))
        data += b"".join(ws.send(TextMessage(data=f"m{i}")) for i in range(2000))
        for start in range(0, len(data), 16000):
            client.conn.send_data(stream_id, data[start : start + 16000])
        client.flush()
        echoed = H2Messages(ws, 2000, len(client.events))
        client.read_until(echoed, limit=100_000)  # (the echoes may come in many reads)
        assert echoed.texts == [f"m{i}" for i in range(2000)]
    finally:
        client.close()


def test_plain_connect_over_http2_gets_405(serve: Serve) -> None:
    import h2.events

    from tests.e2e.h2client import RawH2Client

    server = serve(echo_app())
    client = RawH2Client(server.port)
    try:
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            stream_id, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")]
        )
        client.flush()
        events = client.read_until(client.ended(stream_id))
        [response] = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert dict(response.headers)[b":status"] == b"405"
    finally:
        client.close()
