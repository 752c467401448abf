"""The `ocireg` command."""

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
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the registry")
    _common_options(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:5000)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--offline", action="store_true", help="serve the mirror's cache only, never ask upstream")
    seed = commands.add_parser("seed", help="fetch images from their upstreams into the mirror cache")
    _common_options(seed)
    seed.add_argument("images", nargs="*", metavar="IMAGE")
    seed.add_argument("-f", "--file", help="a file of image references, one a line, # comments")
    seed.add_argument("--platform", action="append", default=[], help="os/arch[/variant]; repeatable (default all)")
    seed.add_argument("--jobs", type=int, default=4, help="images fetched at once (default 4)")
    export = commands.add_parser("export", help="write images to an OCI layout archive")
    _common_options(export)
    export.add_argument("-o", "--output", required=True, help="the archive to write (.tar)")
    export.add_argument("images", nargs="+", metavar="IMAGE")
    load = commands.add_parser("import", help="load an OCI layout archive into the store")
    _common_options(load)
    load.add_argument("archive")
    load.add_argument("--name", help="repository for entries whose ref name is only a tag")
    gc = commands.add_parser("gc", help="remove content nothing references")
    _common_options(gc)
    gc.add_argument("--dry-run", action="store_true", help="report what would go, remove nothing")
    gc.add_argument("--untagged", action="store_true", help="also remove manifests no tag or referrer keeps")
    gc.add_argument("--max-size", metavar="SIZE",
                    help="evict least recently pulled mirror content down to SIZE (e.g. 20G)")
    gc.add_argument("--older-than", metavar="AGE", help="evict mirror content not pulled for AGE (e.g. 30d)")
    gc.add_argument("--grace", metavar="AGE", default="1h", help="never remove content younger than this (default 1h)")
    verify = commands.add_parser("verify", help="re-hash blobs, check links, manifests and tags")
    _common_options(verify)
    verify.add_argument("--repair", action="store_true", help="quarantine corrupted blobs, drop broken links")
    hosts = commands.add_parser("hosts", help="print client configuration for this server")
    _common_options(hosts)
    hosts.add_argument("--listen", metavar="HOST:PORT", help="the address clients use (default from config)")
    hosts.add_argument("--mirror-of", default="docker.io", help="registries to mirror, comma separated")
    return parser


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--data", metavar="DIR", help="storage folder (default ./data)")


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
