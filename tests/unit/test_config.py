"""Config: Hypercorn's defaults, validated assignment, and layered sources with attribution."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from hypercorn.__main__ import build_parser, cli_fields, flags_for, main
from hypercorn.config import Config
from hypercorn.settings import ConfigError, Layer, load_config, read_toml, render_toml


def test_hypercorn_defaults() -> None:
    config = Config()
    assert config.bind == ["127.0.0.1:8000"]
    assert config.alpn_protocols == ["h2", "http/1.1"]
    assert config.backlog == 100
    assert config.graceful_timeout == 3.0
    assert config.keep_alive_timeout == 5.0
    assert config.keep_alive_max_requests == 1000
    assert config.h11_max_incomplete_size == 16384
    assert config.h2_max_concurrent_streams == 100
    assert config.h2_max_header_list_size == 65536
    assert config.h2_max_inbound_frame_size == 16384
    assert config.websocket_max_message_size == 16 * 1024 * 1024
    assert config.wsgi_max_body_size == 16 * 1024 * 1024
    assert config.accesslog is None and config.errorlog == "-"
    assert config.worker_class == "asyncio" and config.workers == 1
    assert config.ciphers == "ECDHE+AESGCM"
    assert config.startup_timeout == config.shutdown_timeout == 60.0
    assert not config.ssl_enabled


def test_config_ignores_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Config() is Hypercorn's: built-in defaults only; the CLI layers the environment.
    monkeypatch.setenv("HYPERCORN_BACKLOG", "7")
    assert Config().backlog == 100


def test_assignment_is_validated_and_bind_string_becomes_list() -> None:
    config = Config()
    config.bind = "127.0.0.1:0"  # type: ignore[assignment]
    assert config.bind == ["127.0.0.1:0"]
    with pytest.raises(ValidationError, match="bind"):
        config.bind = "x"  # type: ignore[assignment]
    with pytest.raises(ValidationError, match="keep_alive_timeout"):
        config.keep_alive_timeout = "soon"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        config.no_such_key = 1


@pytest.mark.parametrize(
    "bind",
    ["127.0.0.1:80", "localhost", "[::1]:8000", "unix:/tmp/x.sock", "fd://3", "0.0.0.0", "[::]:0"],
)
def test_valid_bind_forms(bind: str) -> None:
    assert Config(bind=[bind]).bind == [bind]


@pytest.mark.parametrize(
    ("bind", "problem"),
    [
        ("127.0.0.1:99999", "out of range"),
        ("::1:80", "brackets"),
        ("[::1", "missing"),
        ("unix:", "needs a path"),
        ("fd://x", "file descriptor"),
        (":80", "no host"),
        ("127.0.0.1:http", "not a number"),
    ],
)
def test_invalid_bind_forms_say_what_is_wrong(bind: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Config(bind=[bind])


def test_verify_mode_accepts_names() -> None:
    assert Config(verify_mode="required").verify_mode == ssl.CERT_REQUIRED  # type: ignore[arg-type]
    assert Config(verify_mode="CERT_OPTIONAL").verify_mode == ssl.CERT_OPTIONAL  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Config(verify_mode="sometimes")  # type: ignore[arg-type]


def test_umask_accepts_octal_text() -> None:
    assert Config(umask="022").umask == 0o22  # type: ignore[arg-type]
    assert Config(umask="0o077").umask == 0o77  # type: ignore[arg-type]


def test_date_header_uses_module_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hypercorn.config

    monkeypatch.setattr(hypercorn.config, "time", lambda: 0.0)
    assert Config().response_headers("h11") == [
        (b"date", b"Thu, 01 Jan 1970 00:00:00 GMT"),
        (b"server", b"hypercorn-h11"),
    ]


def test_response_headers_follow_setting_changes() -> None:
    """The static part of the default headers is cached per protocol; changing a setting
    after use must still change the headers."""
    config = Config(include_date_header=False)
    assert config.response_headers("h2") == [(b"server", b"hypercorn-h2")]
    config.include_server_header = False
    assert config.response_headers("h2") == []
    config.alt_svc_headers = ['h3=":443"']
    assert config.response_headers("h2", secure=True) == [(b"alt-svc", b'h3=":443"')]
    headers = config.response_headers("h2", secure=True)
    headers.append((b"x", b"y"))  # callers may extend what they get
    assert config.response_headers("h2", secure=True) == [(b"alt-svc", b'h3=":443"')]


# --------------------------------------------------------------------------- alternative sources


def test_from_mapping_and_kwargs() -> None:
    config = Config.from_mapping({"bind": "0.0.0.0:1"}, workers=3)
    assert config.bind == ["0.0.0.0:1"] and config.workers == 3
    with pytest.raises(ValidationError, match="bnid"):
        Config.from_mapping(bnid="0.0.0.0:1")


def test_from_toml_with_tables(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text(
        'bind = ["127.0.0.1:9"]\nkeep_alive_timeout = 75\n'
        '[websocket]\nping_timeout = 5\n[mounts]\n"/api" = "api:app"\n'
    )
    config = Config.from_toml(path)
    assert config.bind == ["127.0.0.1:9"]
    assert config.keep_alive_timeout == 75.0
    assert config.websocket_ping_timeout == 5.0
    assert config.mounts == {"/api": "api:app"}


def test_from_pyfile_takes_only_config_keys(tmp_path: Path) -> None:
    path = tmp_path / "conf.py"
    path.write_text("import os\nbind = ['127.0.0.1:5']\nhelper = 3\nworkers = 2\n")
    config = Config.from_pyfile(path)
    assert config.bind == ["127.0.0.1:5"] and config.workers == 2


def test_from_object() -> None:
    class Settings:
        backlog = 5
        _private = 1

    assert Config.from_object(Settings).backlog == 5
    assert Config.from_object("ssl").ciphers == "ECDHE+AESGCM"  # a module with no config keys


# --------------------------------------------------------------------------- precedence


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hypercorn.toml"
    path.write_text(text)
    return str(path)


def test_precedence_default_toml_env_cli(tmp_path: Path) -> None:
    toml = _write(tmp_path, "backlog = 10\nworkers = 2\nroot_path = '/toml'\nloglevel = 'debug'\n")
    env = {"HYPERCORN_WORKERS": "3", "HYPERCORN_ROOT_PATH": "/env"}
    cli = Layer()
    cli.set("root_path", "/cli", "flag --root-path")
    config, sources, _ = load_config(cli, toml, env)
    assert config.graceful_timeout == 3.0 and "graceful_timeout" not in sources
    assert (config.backlog, sources["backlog"]) == (10, f"config file {toml}")
    assert config.loglevel == "DEBUG"
    assert (config.workers, sources["workers"]) == (3, "environment variable HYPERCORN_WORKERS")
    assert (config.root_path, sources["root_path"]) == ("/cli", "flag --root-path")


def test_config_path_from_environment(tmp_path: Path) -> None:
    toml = _write(tmp_path, "backlog = 11\n")
    config, _, _ = load_config(None, None, {"HYPERCORN_CONFIG": toml})
    assert config.backlog == 11


def test_env_lists_json_or_comma_and_mappings() -> None:
    env = {
        "HYPERCORN_BIND": "127.0.0.1:1, 127.0.0.1:2",
        "HYPERCORN_SERVER_NAMES": '["a", "b"]',
        "HYPERCORN_MOUNTS": "/a=x:app,/b=y:app",
        "HYPERCORN_INCLUDE_SERVER_HEADER": "false",
    }
    config, _, _ = load_config(None, None, env)
    assert config.bind == ["127.0.0.1:1", "127.0.0.1:2"]
    assert config.server_names == ["a", "b"]
    assert config.mounts == {"/a": "x:app", "/b": "y:app"}
    assert config.include_server_header is False


def test_env_file_variant_reads_secret(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    config, sources, _ = load_config(None, None, {"HYPERCORN_KEYFILE_PASSWORD_FILE": str(secret)})
    assert config.keyfile_password == "s3cret"
    assert "HYPERCORN_KEYFILE_PASSWORD_FILE" in sources["keyfile_password"]


def test_web_concurrency_sets_workers_unless_hypercorn_workers_given() -> None:
    assert load_config(None, None, {"WEB_CONCURRENCY": "4"})[0].workers == 4
    env = {"WEB_CONCURRENCY": "4", "HYPERCORN_WORKERS": "2"}
    assert load_config(None, None, env)[0].workers == 2


def test_unknown_env_var_warns_but_unknown_toml_key_fails(tmp_path: Path) -> None:
    _, _, warnings = load_config(None, None, {"HYPERCORN_SERVICE_HOST": "10.0.0.1"})
    assert warnings == ["ignoring unknown environment variable HYPERCORN_SERVICE_HOST"]
    toml = _write(tmp_path, "bnid = '127.0.0.1:1'\n")
    with pytest.raises(ConfigError, match=r"bnid \(from config file .*\): unknown"):
        load_config(None, toml, {})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HYPERCORN_WORKERS": "many"},
            "workers = 'many' (from environment variable HYPERCORN_WORKERS)",
        ),
        ({"HYPERCORN_BIND": "nope:99:1"}, "bind"),
        (
            {"HYPERCORN_CERTFILE": "/nonexistent/cert.pem", "HYPERCORN_KEYFILE": "/nonexistent/k"},
            "certfile = '/nonexistent/cert.pem' (from environment variable HYPERCORN_CERTFILE): "
            "does not exist",
        ),
        ({"HYPERCORN_LOG_FORMAT": "xml"}, "log_format = 'xml'"),
        ({"HYPERCORN_TRUSTED_PROXIES": "10.0.0.0/33"}, "trusted_proxies"),
    ],
)
def test_bad_values_name_key_and_source(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, None, env)
    assert message in str(info.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(Path(_write(tmp_path, "bind = [")))


def test_print_config_round_trips_and_names_sources(tmp_path: Path) -> None:
    config, sources, _ = load_config(
        None, _write(tmp_path, "backlog = 12\n"), {"HYPERCORN_MOUNTS": "/a=x:app"}
    )
    text = render_toml(config, sources)
    assert "backlog = 12  # from config file" in text
    assert 'mounts = {"/a" = "x:app"}  # from environment variable HYPERCORN_MOUNTS' in text
    reparsed = tmp_path / "again.toml"
    reparsed.write_text(text)
    again = Config.from_toml(reparsed)
    assert again.backlog == 12 and again.mounts == {"/a": "x:app"}


# --------------------------------------------------------------------------- the CLI


def test_every_cli_field_has_a_flag_and_hypercorn_spellings_exist() -> None:
    parser = build_parser()
    option_strings = {flag for action in parser._actions for flag in action.option_strings}
    for name in cli_fields():
        assert set(flags_for(name)) <= option_strings
    for flag in [
        "-b",
        "--bind",
        "--insecure-bind",
        "--quic-bind",
        "--certfile",
        "--keyfile",
        "--keyfile-password",
        "--ca-certs",
        "--ciphers",
        "--verify-mode",
        "-w",
        "--workers",
        "-k",
        "--worker-class",
        "--keep-alive",
        "--graceful-timeout",
        "--read-timeout",
        "--max-requests",
        "--max-requests-jitter",
        "--access-logfile",
        "--access-logformat",
        "--error-logfile",
        "--log-level",
        "--log-config",
        "--reload",
        "--root-path",
        "--server-name",
        "--statsd-host",
        "--statsd-prefix",
        "-p",
        "--pid",
        "-m",
        "--umask",
        "-u",
        "--user",
        "-g",
        "--group",
        "--backlog",
        "--websocket-ping-interval",
        "--debug",
        "-D",
        "--daemon",
        "--admin-bind",
        "--shutdown-delay",
        "--trusted-proxies",
        "--log-format",
    ]:
        assert flag in option_strings, flag


def test_cli_flag_beats_env_and_absent_flag_does_not_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HYPERCORN_BACKLOG", "50")
    monkeypatch.setenv("HYPERCORN_WORKERS", "4")
    assert main(["--print-config", "--backlog", "60", "x:app"]) == 0
    out = capsys.readouterr().out
    assert "backlog = 60  # from flag --backlog" in out
    assert "workers = 4  # from environment variable HYPERCORN_WORKERS" in out
    assert "debug = false  # from default" in out


def test_cli_list_and_bool_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--print-config",
                "-b",
                "127.0.0.1:1",
                "-b",
                "[::1]:2",
                "--no-include-date-header",
                "--reload",
                "x:app",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert 'bind = ["127.0.0.1:1", "[::1]:2"]' in out
    assert "include_date_header = false" in out
    assert "use_reloader = true" in out


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """``hypercorn --help`` prints (a description with a literal "%" once broke it)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "%(x)s atoms" in out
    for name in cli_fields():
        assert f"[HYPERCORN_{name.upper()}]" in out


def test_check_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--check-config", "x:app"]) == 0
    monkeypatch.setenv("HYPERCORN_BACKLOG", "-1")
    assert main(["--check-config", "x:app"]) == 2
    err = capsys.readouterr().err
    assert "backlog = '-1' (from environment variable HYPERCORN_BACKLOG)" in err


def test_missing_application_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "no application given" in capsys.readouterr().err


def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "HYPERCORN_KEEP_ALIVE_TIMEOUT": "abc"}
    result = subprocess.run(
        [sys.executable, "-m", "hypercorn", "x:app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert (
        "keep_alive_timeout = 'abc' (from environment variable "
        "HYPERCORN_KEEP_ALIVE_TIMEOUT)" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_unknown_app_exits_2_with_message(tmp_path: Path) -> None:
    (tmp_path / "present.py").write_text("app = None\n")
    for target, message in [
        ("absent:app", "module 'absent' not found"),
        ("present:missing", "'present' has no attribute 'missing'"),
        ("present:app", "not an ASGI or WSGI application"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "hypercorn", "-w", "0", target],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
