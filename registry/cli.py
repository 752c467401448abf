"""The `ocireg` command: `serve` here, the tools from `registry.tools.commands`.

Dependency direction: this module sits on top; it depends on `app` (serve) and the tools, and
nothing imports it but `registry.__main__` and the `ocireg` entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from . import config as config_module
from .accesslog import AccessLogger
from .app import configure_logging, create_app
from .config import Config, ConfigError
from .server import Listener
from .tools import commands

log = logging.getLogger("ocireg")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocireg", description="A local OCI registry and pull-through mirror.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_serve(subparsers)
    commands.add_commands(subparsers)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    flags: dict[str, dict[str, Any]] = {}
    if getattr(args, "listen", None):
        flags.setdefault("server", {})["listen"] = args.listen
    if getattr(args, "data", None):
        flags.setdefault("storage", {})["root"] = args.data
    if getattr(args, "offline", False):
        flags.setdefault("mirror", {})["offline"] = True
    if getattr(args, "log_level", None):
        flags.setdefault("log", {})["level"] = args.log_level
    return flags


def _add_serve(subparsers: commands.Subparsers[argparse.ArgumentParser]) -> None:
    """`serve`'s arguments, beside the functions that run it."""
    serve = subparsers.add_parser("serve", help="run the registry")
    commands.common_options(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:5000)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--offline", action="store_true", help="serve the mirror's cache only, never ask upstream")


async def _serve(config: Config) -> None:
    """Binds first: a taken port then fails before the app opens anything it must close."""
    listener = await Listener.bind(config.server)
    try:
        runner = web.AppRunner(create_app(config), handle_signals=False)
        await runner.setup()
        try:
            assert runner.server is not None
            listener.start(runner.server, config.server.header_timeout,
                           keepalive_timeout=config.server.keepalive_timeout,
                           access_log=log if config.log.access else None, access_log_class=AccessLogger)
            data = os.path.abspath(config.storage.root)  # noqa: ASYNC240 - string work, no I/O
            log.info("ocireg listening on http://%s (data in %s)", config.server.listen, data)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await listener.stop()
            await runner.cleanup()
    finally:
        listener.close()


def _serve_command(config: Config, args: argparse.Namespace) -> int:
    """The system's wording of a failed bind is the one line printed."""
    try:
        asyncio.run(_serve(config))
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno and err.errno > 0 else err.strerror
        print(f"ocireg: cannot serve on {config.server.listen}: {reason}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = config_module.load(args.config, os.environ, _overrides(args))
    except ConfigError as err:
        print(f"ocireg {args.command}: configuration error: {err}", file=sys.stderr)
        return 2
    configure_logging(config)
    if args.command == "serve":
        return _serve_command(config, args)
    return _run_tool(args.command, config, args)


def _run_tool(command: str, config: Config, args: argparse.Namespace) -> int:
    """A tool that cannot do its work says why in one line and exits non-zero: a traceback
    tells a user nothing about which file or image is at fault."""
    try:
        return commands.run(command, config, args)
    except commands.UsageError as err:
        print(f"ocireg {command}: {err}", file=sys.stderr)
        return 2
    except commands.CommandError as err:
        print(f"ocireg {command}: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"ocireg {command}: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ocireg {command}: interrupted", file=sys.stderr)
        return 130
