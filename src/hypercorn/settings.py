"""Layered configuration loading: defaults < TOML file < environment < CLI flags.

Each source yields values keyed by field name plus a description of where each came from, so a
bad value is reported as "key (from source): problem" and ``--print-config`` can show the source
of every effective value. Environment variables are ``HYPERCORN_<KEY>`` (and
``HYPERCORN_<KEY>_FILE`` to read a value from a file); lists accept JSON or comma-separated
values, mappings JSON or ``key=value,key=value``. ``WEB_CONCURRENCY`` sets ``workers`` when
``HYPERCORN_WORKERS`` is unset.

Unknown ``HYPERCORN_*`` variables only warn: Kubernetes injects ``<SERVICE>_PORT``-style
variables for a Service named "hypercorn", which must not stop the server. Unknown keys in a
TOML file or a mapping are errors.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import Config, field_extra

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "HYPERCORN_"
CONFIG_ENV = "HYPERCORN_CONFIG"
DEFAULT_SOURCE = "default"


class ConfigError(Exception):
    """Invalid configuration; the message names the key and its source. Exit code 2."""

    exit_code = 2


@dataclass
class Layer:
    """Values from one source, with a per-key description of where each came from."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def field_kind(name: str) -> str:
    """ "list", "dict", "bool" or "scalar" for a Config field."""
    annotation = Config.model_fields[name].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        origin = typing.get_origin(candidate)
        if origin is list or candidate is list:
            return "list"
        if origin is dict or candidate is dict:
            return "dict"
        if candidate is bool:
            return "bool"
    return "scalar"


def _allows_none(name: str) -> bool:
    return type(None) in typing.get_args(Config.model_fields[name].annotation)


def parse_text(name: str, raw: str) -> Any:
    """Turn the text of an env var (or flag) into what the field's validator expects."""
    kind = field_kind(name)
    text = raw.strip()
    if kind == "list":
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind == "dict":
        if text.startswith("{"):
            return json.loads(text)
        result: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"expected key=value pairs or JSON, got {item!r}")
            result[key.strip()] = value.strip()
        return result
    if text == "" and _allows_none(name):
        return None
    return raw


def flatten_tables(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten TOML tables into keys: ``[websocket] ping_timeout`` is ``websocket_ping_timeout``.

    Tables named after a mapping-typed key (such as ``[mounts]``) are kept as values.
    """
    result: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and not (
            key in Config.model_fields and field_kind(key) == "dict"
        ):
            for sub_key, sub_value in flatten_tables(value).items():
                result[f"{key}_{sub_key}"] = sub_value
        else:
            result[key] = value
    return result


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file; raises :class:`ConfigError` naming the file on failure."""
    try:
        with open(path, "rb") as file_:
            return dict(tomllib.load(file_))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def file_layer(spec: str) -> Layer:
    """Values from ``-c``: a TOML path, ``python:module.object`` or ``file:path.py``."""
    layer = Layer()
    if spec.startswith("python:"):
        config = Config.from_object(spec[len("python:") :])
        source = f"config object {spec}"
        values = {key: getattr(config, key) for key in config.model_fields_set}
    elif spec.startswith("file:"):
        config = Config.from_pyfile(spec[len("file:") :])
        source = f"config file {spec[len('file:') :]}"
        values = {key: getattr(config, key) for key in config.model_fields_set}
    else:
        path = Path(spec.removeprefix("toml:"))
        source = f"config file {path}"
        values = flatten_tables(read_toml(path))
    for key, value in values.items():
        layer.set(key, value, source)
    return layer


def env_layer(environ: Mapping[str, str]) -> tuple[Layer, list[str]]:
    """Values from ``HYPERCORN_*`` (and ``WEB_CONCURRENCY``); also returns warnings."""
    layer = Layer()
    warnings: list[str] = []
    known = {ENV_PREFIX + name.upper() for name in Config.model_fields}
    for name in Config.model_fields:
        if field_extra(name).get("cli") is False:
            continue
        var = ENV_PREFIX + name.upper()
        source = f"environment variable {var}"
        if var in environ:
            raw = environ[var]
        elif var + "_FILE" in environ:
            path = environ[var + "_FILE"]
            source = f"file {path} (from environment variable {var}_FILE)"
            try:
                raw = Path(path).read_text().rstrip("\r\n")
            except OSError as error:
                raise ConfigError(
                    f"{name} (from environment variable {var}_FILE): cannot read "
                    f"{path}: {error.strerror}"
                ) from None
        else:
            continue
        try:
            layer.set(name, parse_text(name, raw), source)
        except ValueError as error:
            raise ConfigError(f"{name} (from {source}): {error}") from None
    if "workers" not in layer.values and environ.get("WEB_CONCURRENCY"):
        layer.set("workers", environ["WEB_CONCURRENCY"], "environment variable WEB_CONCURRENCY")
    for var in environ:
        if (
            var.startswith(ENV_PREFIX)
            and var not in known
            and var != CONFIG_ENV
            and not (var.endswith("_FILE") and var[:-5] in known)
        ):
            warnings.append(f"ignoring unknown environment variable {var}")
    return layer, warnings


def load_config(
    cli: Layer | None = None,
    config_spec: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, dict[str, str], list[str]]:
    """Build the effective Config from every source.

    Returns the config, the source of each key that was set, and warnings. Raises
    :class:`ConfigError` (exit code 2) naming the key and its source for any bad value.
    """
    environ = os.environ if environ is None else environ
    cli = cli or Layer()
    layers: list[Layer] = []
    spec = config_spec or environ.get(CONFIG_ENV)
    if spec:
        layers.append(file_layer(spec))
    env, warnings = env_layer(environ)
    layers += [env, cli]
    merged = Layer()
    for layer in layers:
        for key, value in layer.values.items():
            merged.set(key, value, layer.sources[key])
    try:
        config = Config(**merged.values)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, merged.sources)) from None
    check_files(config, merged.sources)
    return config, merged.sources, warnings


def describe_validation_error(error: ValidationError, sources: Mapping[str, str]) -> str:
    """One line per problem: ``key (from source): message``."""
    lines = []
    for item in error.errors():
        key = str(item["loc"][0]) if item["loc"] else "config"
        source = sources.get(key, DEFAULT_SOURCE)
        if item["type"] == "extra_forbidden":
            lines.append(f"{key} (from {source}): unknown configuration key")
            continue
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        lines.append(f"{key} = {value!r} (from {source}): {message}")
    return "\n".join(lines)


def check_files(config: Config, sources: Mapping[str, str]) -> None:
    """Fail early, naming the key and file, when a TLS file cannot be read."""
    for key in ("certfile", "keyfile", "ca_certs"):
        path = getattr(config, key)
        if path is None:
            continue
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            reason = "does not exist" if not os.path.exists(path) else "is not a readable file"
            raise ConfigError(
                f"{key} = {path!r} (from {sources.get(key, DEFAULT_SOURCE)}): {reason}"
            )
    if (config.certfile is None) != (config.keyfile is None):
        missing = "keyfile" if config.keyfile is None else "certfile"
        raise ConfigError(
            f"{missing}: required when {'certfile' if missing == 'keyfile' else 'keyfile'} is set"
        )
    if config.quic_bind and not config.ssl_enabled:
        raise ConfigError(
            f"quic_bind = {config.quic_bind!r} (from {sources.get('quic_bind', DEFAULT_SOURCE)}):"
            " HTTP/3 always uses TLS; set certfile and keyfile"
        )
    if config.ssl_enabled:
        try:
            config.create_ssl_context()
        except (ssl.SSLError, OSError, ValueError) as error:
            raise ConfigError(
                f"certfile/keyfile ({config.certfile}, {config.keyfile}): cannot be loaded: {error}"
            ) from None


# --------------------------------------------------------------------------- TOML output


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, ssl.VerifyMode):
        return json.dumps({0: "none", 1: "optional", 2: "required"}[int(value)])
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    return json.dumps(str(value))


def render_toml(config: Config, sources: Mapping[str, str]) -> str:
    """The effective configuration as TOML, each line annotated with its source."""
    lines = ["# Effective hypercorn configuration; '# from' says where each value came from."]
    for name in sorted(Config.model_fields):
        if field_extra(name).get("cli") is False and name not in sources:
            continue
        value = getattr(config, name)
        source = sources.get(name, DEFAULT_SOURCE)
        if value is None:
            lines.append(f"# {name} is unset  # from {source}")
        elif name == "logger_class":
            lines.append(f"# {name} = {value.__module__}.{value.__qualname__}  # from {source}")
        else:
            lines.append(f"{name} = {_toml_value(value)}  # from {source}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reference docs

TABLE_START = "<!-- config-table:start (generated by `make docs` from the Config model) -->"
TABLE_END = "<!-- config-table:end -->"


def reference_table() -> str:
    """The README's configuration reference, generated from the model: key, environment
    variable, flags, default and meaning for every setting."""
    from .__main__ import cli_fields, flags_for

    rows = ["| key | environment variable | flags | default | meaning |", "|---|---|---|---|---|"]
    for name in sorted(cli_fields()):
        field = Config.model_fields[name]
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else _toml_value(default)
        flags = ", ".join(f"`{flag}`" for flag in flags_for(name))
        description = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | {flags} | `{shown}` | {description} |"
        )
    return "\n".join(rows)


def update_readme(path: Path) -> bool:
    """Rewrite the generated table in the README; True if it changed."""
    text = path.read_text()
    start = text.index(TABLE_START) + len(TABLE_START)
    end = text.index(TABLE_END)
    new = text[:start] + "\n" + reference_table() + "\n" + text[end:]
    if new != text:
        path.write_text(new)
        return True
    return False


if __name__ == "__main__":  # make docs
    print("README.md updated" if update_readme(Path("README.md")) else "README.md up to date")
