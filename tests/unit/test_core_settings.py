"""Config.core_settings: the snapshot of the settings the protocol core reads per request must
say what the Config says, now and after any change, for both HTTP/1.1 adapters."""

from __future__ import annotations

import pickle

import pytest

from hypercorn.config import Config
from hypercorn.protocol import ConnectionInfo
from hypercorn.protocol.connection import http11_adapter
from hypercorn.protocol.core_settings import CoreSettings

# (dir(), not __slots__: the compiled build's class has no __slots__)
FIELDS = [name for name in dir(CoreSettings) if not name.startswith("_")]
COPIED = [name for name in FIELDS if name not in ("source", "body_timeout", "default_headers")]
CHANGES = {
    "h11_max_incomplete_size": 4096,
    "h11_pass_raw_headers": True,
    "keep_alive_max_requests": 7,
    "keep_alive_timeout": 11.0,
    "max_app_queue_size": 3,
    "max_request_body_size": 1000,
    "proxy_headers": "x-forwarded",
    "request_header_timeout": 2.5,
    "root_path": "/app",
    "server_names": ["example.com"],
    "trusted_proxies": ["10.0.0.1"],
}


def test_every_field_is_the_configs_and_follows_changes() -> None:
    assert sorted(COPIED) == sorted(CHANGES)  # a new field needs a change to test it with
    config = Config()
    settings = config.core_settings
    assert config.core_settings is settings  # made once while nothing changes
    for name in COPIED:
        assert getattr(settings, name) == getattr(config, name), name
    for name, value in CHANGES.items():
        before = config.core_settings
        setattr(config, name, value)
        after = config.core_settings
        assert after is not before
        assert getattr(after, name) == value, name
        assert getattr(before, name) != value, name  # (the old snapshot is left as it was)


def test_default_headers_are_made_again_each_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The headers added to every response are shared within a second, and the Date moves
    on with the clock."""
    import hypercorn._headers
    import hypercorn.config

    clock = [1_700_000_000.2]
    monkeypatch.setattr(hypercorn.config, "time", lambda: clock[0])
    monkeypatch.setattr(hypercorn._headers, "time", lambda: clock[0])
    defaults = Config().core_settings.default_headers
    first = defaults.get("h11", False)
    assert first == ((b"date", b"Tue, 14 Nov 2023 22:13:20 GMT"), (b"server", b"hypercorn-h11"))
    clock[0] += 0.5
    assert defaults.get("h11", False) is first  # the same second: shared
    assert defaults.get("h2", False) == (first[0], (b"server", b"hypercorn-h2"))
    clock[0] += 1
    later = defaults.get("h11", False)
    assert later == ((b"date", b"Tue, 14 Nov 2023 22:13:21 GMT"), (b"server", b"hypercorn-h11"))


def test_default_headers_follow_setting_changes_and_tls() -> None:
    config = Config(include_date_header=False, quic_bind=["127.0.0.1:4433"])
    assert config.default_headers("h2", True) == (
        (b"server", b"hypercorn-h2"),
        (b"alt-svc", b'h3=":4433"; ma=86400'),
    )
    assert config.default_headers("h2", False) == ((b"server", b"hypercorn-h2"),)
    config.include_server_header = False
    assert config.core_settings.default_headers.get("h2", False) == ()


def test_a_copy_of_the_config_has_its_own_snapshot() -> None:
    """model_copy copies private state without assignments: the snapshot must not follow."""
    config = Config(root_path="/a")
    assert config.core_settings.root_path == "/a"
    copy = config.model_copy(update={"root_path": "/b"})
    assert copy.core_settings.root_path == "/b"
    assert copy.core_settings.source is copy
    assert config.core_settings.root_path == "/a"


@pytest.mark.parametrize(
    ("body", "read", "expected"),
    [(60.0, None, 60.0), (None, 5.0, 5.0), (30.0, 10.0, 10.0), (None, None, None)],
)
def test_body_timeout_is_the_shorter_one_set(
    body: float | None, read: float | None, expected: float | None
) -> None:
    config = Config(request_body_timeout=body, read_timeout=read)
    assert config.core_settings.body_timeout == expected


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_connection_made_after_a_change_uses_it(parser: str) -> None:
    pytest.importorskip("httptools") if parser == "httptools" else None
    config = Config(http1_parser=parser)
    info = ConnectionInfo(client=("127.0.0.1", 5000), server=("127.0.0.1", 8000))
    request = b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n"

    def scope_of_a_request() -> dict[str, object]:
        core = http11_adapter(config)(config, info, 0.0)
        core.receive_data(request, 0.0)
        (stream,) = core.pop_new_streams()
        return dict(stream.scope)

    assert scope_of_a_request()["root_path"] == ""
    config.root_path = "/app"
    scope = scope_of_a_request()
    assert scope["root_path"] == "/app" and scope["path"] == "/app/x"


def test_a_config_in_use_pickles_for_a_worker_process() -> None:
    """The supervisor pickles the Config for each worker: the caches built by using it (the
    logger, this snapshot) stay behind and are made again on the other side."""
    config = Config(root_path="/a")
    assert config.log is config.log and config.core_settings.root_path == "/a"
    copy = pickle.loads(pickle.dumps(config))
    assert copy.root_path == "/a" and copy.core_settings.root_path == "/a"
    assert copy.core_settings.source is copy
    assert config.core_settings.source is config  # (the original keeps its own)
