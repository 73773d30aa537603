"""The ``hypercorn`` command line. Every setting's flag is derived from the Config model."""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence
from typing import Any

from .__about__ import __version__, compiled
from .config import Config, field_extra
from .settings import ConfigError, Layer, field_kind, load_config, render_toml


def flags_for(name: str) -> list[str]:
    """The CLI flags of a Config field: Hypercorn's spelling(s), then ``--key-name``."""
    flags = [str(flag) for flag in field_extra(name).get("flags", [])]
    canonical = "--" + name.replace("_", "-")
    if canonical not in flags:
        flags.append(canonical)
    return flags


def _long_flag(name: str) -> str:
    return next(flag for flag in flags_for(name) if flag.startswith("--"))


def cli_fields() -> list[str]:
    """Names of the fields that can be set from the command line and the environment."""
    return [name for name in Config.model_fields if field_extra(name).get("cli") is not False]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypercorn",
        description="Serve an ASGI or WSGI application over HTTP/1.1 (HTTP/2, HTTP/3 and "
        "WebSockets are on the roadmap). Every setting can also be given as a TOML "
        "key or a HYPERCORN_<KEY> environment variable; flags win over the "
        "environment, which wins over the config file.",
    )
    parser.add_argument(
        "application", nargs="?", help="the application: [asgi:|wsgi:]module[:expr], e.g. main:app"
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="TOML config file (or python:module.object, file:path.py); "
        "default from HYPERCORN_CONFIG",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration and exit (0 if valid, 2 if not)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration as TOML, with sources, and exit",
    )
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="probe the admin listener's /readyz (admin_bind) and exit 0 if "
        "ready, 1 if not: a container HEALTHCHECK without curl",
    )
    build = "compiled" if compiled() else "pure Python"
    parser.add_argument("--version", action="version", version=f"hypercorn {__version__} ({build})")
    settings = parser.add_argument_group("settings")
    for name in cli_fields():
        field = Config.model_fields[name]
        kind = field_kind(name)
        # (argparse expands %-formats in help: a literal % must be doubled)
        help_text = f"{field.description} [HYPERCORN_{name.upper()}]".replace("%", "%%")
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if kind == "bool":
            options["action"] = argparse.BooleanOptionalAction
        elif kind == "list":
            options.update(action="append", metavar="VALUE")
        elif kind == "dict":
            options.update(action="append", metavar="KEY=VALUE")
        else:
            choices = [
                arg
                for candidate in (field.annotation, *typing.get_args(field.annotation))
                if typing.get_origin(candidate) is typing.Literal
                for arg in typing.get_args(candidate)
            ]
            if choices:
                options["choices"] = choices
            options["metavar"] = name.upper() if not choices else None
        settings.add_argument(*flags_for(name), **options)
    return parser


def cli_layer(args: argparse.Namespace) -> Layer:
    """The values given on the command line, each with the flag it came from."""
    layer = Layer()
    for name in cli_fields():
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if field_kind(name) == "dict":
            mapping: dict[str, str] = {}
            for item in value:
                key, sep, item_value = item.partition("=")
                if not sep:
                    raise ConfigError(
                        f"{name} (from flag {_long_flag(name)}): expected KEY=VALUE, got {item!r}"
                    )
                mapping[key] = item_value
            value = mapping
        layer.set(name, value, f"flag {_long_flag(name)}")
    if args.application:
        layer.set("app", args.application, "command-line argument APPLICATION")
    return layer


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        config, sources, warnings = load_config(cli_layer(args), args.config)
    except ConfigError as error:
        print(f"hypercorn: configuration error: {error}", file=sys.stderr)
        return ConfigError.exit_code
    for warning in warnings:
        print(f"hypercorn: warning: {warning}", file=sys.stderr)
    if args.print_config:
        sys.stdout.write(render_toml(config, sources))
        return 0
    if args.healthcheck:
        if config.admin_bind is None:
            print(
                "hypercorn: --healthcheck needs admin_bind (HYPERCORN_ADMIN_BIND)", file=sys.stderr
            )
            return 1
        from .admin import probe

        status = probe(config.admin_bind)
        print(f"{config.admin_bind}/readyz: {status or 'unreachable'}")
        return 0 if status == 200 else 1
    if config.app is None:
        print(
            "hypercorn: configuration error: no application given (the APPLICATION "
            "argument, --app, HYPERCORN_APP or app in the config file)",
            file=sys.stderr,
        )
        return ConfigError.exit_code
    if args.check_config:
        print("hypercorn: configuration is valid")
        return 0
    from .run import run

    return run(config)


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
