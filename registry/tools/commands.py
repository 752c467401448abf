"""The tool commands behind `ocireg seed|export|import|gc|verify|hosts`.

Dependency direction: the CLI depends on this module; the tools get their store and mirror from
`registry.compose` (the only way any tool reaches `mirror`), never by building them."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from ..compose import Services, StoreMissing, build_services, open_services
from ..config import Config, parse_duration
from ..storage.gc import GcOptions, collect_garbage
from .errors import CommandError
from .export import export
from .hosts import render
from .imageref import ImageRefError, parse_image, read_image_list
from .importer import import_archive
from .progress import Progress, human_bytes
from .seed import seed
from .verify import verify
from .walk import Platform

Runner = Callable[[Config, argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # the `add_subparsers()` object of argparse

SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
              "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


class UsageError(Exception):
    """Arguments that cannot work; the message says which."""


@dataclass(frozen=True)
class Command:
    """One `ocireg` subcommand: its arguments and the function that runs it, defined side by side."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Runner


def common_options(parser: argparse.ArgumentParser) -> None:
    """What every command, `serve` included, accepts: where the configuration and the data are."""
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--data", metavar="DIR", help="storage folder (default ./data)")


def parse_size(text: str) -> int:
    number = text.rstrip("bB").rstrip("iIkKmMgGtT")
    unit = text[len(number):].rstrip("bB").lower()
    try:
        size = float(number) * SIZE_UNITS[unit]
    except (KeyError, ValueError):
        size = math.nan
    if not math.isfinite(size) or size < 0:
        raise UsageError(f"size {text!r}: expected a number of zero or more with k, M, G or T (e.g. 20G)")
    return int(size)


def _existing_store(config: Config) -> Services:
    """gc and verify read an existing store: a mistyped --data must not look like a clean one."""
    try:
        return build_services(config, require_store=True)
    except StoreMissing as err:
        raise UsageError(str(err)) from None


def _image_list(path: str) -> list[str]:
    try:
        return read_image_list(path)
    except OSError as err:
        raise UsageError(f"{path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file of image references") from None


def _duration(text: str, what: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected a duration like 30m, 12h or 7d") from None


def _seed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("-f", "--file", help="a file of image references, one a line, # comments")
    parser.add_argument("--platform", action="append", default=[],
                        help="os/arch[/variant]; repeatable (default all)")
    parser.add_argument("--jobs", type=int, default=4, help="images fetched at once (default 4)")


def _seed(config: Config, args: argparse.Namespace) -> int:
    texts = list(args.images) + (_image_list(args.file) if args.file else [])
    if not texts:
        raise UsageError("name images on the command line or with -f FILE")
    upstreams = {u.name for u in config.mirror.upstreams}
    try:
        images = [parse_image(text, upstreams) for text in texts]
        platforms = [Platform.parse(p) for p in args.platform]
    except (ImageRefError, ValueError) as err:
        raise UsageError(str(err)) from None

    async def run() -> int:
        async with open_services(config) as services:
            if services.mirror is None:
                raise UsageError("no upstream is configured: seed fills the mirror cache from [[mirror.upstreams]]")
            return await seed(services.mirror, images, platforms, args.jobs, Progress("seed"))
    return asyncio.run(run())


SEED = Command("seed", "fetch images from their upstreams into the mirror cache", _seed_arguments, _seed)


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="the archive to write (.tar)")
    parser.add_argument("images", nargs="+", metavar="IMAGE")


def _export(config: Config, args: argparse.Namespace) -> int:
    folder = os.path.dirname(os.path.abspath(args.output))
    if os.path.isdir(args.output):
        raise UsageError(f"{args.output}: is a folder; name the archive file to write")
    if not os.path.isdir(folder):
        raise UsageError(f"{args.output}: no such folder {folder}")

    async def run() -> int:
        async with open_services(config) as services:
            return await export(services, list(args.images), args.output, Progress("export"))
    return asyncio.run(run())


EXPORT = Command("export", "write images to an OCI layout archive", _export_arguments, _export)


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive")
    parser.add_argument("--name", help="repository for entries whose ref name is only a tag")


def _import(config: Config, args: argparse.Namespace) -> int:
    if not os.path.isfile(args.archive):
        why = "not a regular file" if os.path.exists(args.archive) else "no such file"
        raise UsageError(f"{args.archive}: {why}")

    async def run() -> int:
        async with open_services(config) as services:
            return await import_archive(services.local, args.archive, args.name, Progress("import"))
    return asyncio.run(run())


IMPORT = Command("import", "load an OCI layout archive into the store", _import_arguments, _import)


def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="report what would go, remove nothing")
    parser.add_argument("--untagged", action="store_true", help="also remove manifests no tag or referrer keeps")
    parser.add_argument("--max-size", metavar="SIZE",
                        help="evict least recently pulled mirror content down to SIZE (e.g. 20G)")
    parser.add_argument("--older-than", metavar="AGE", help="evict mirror content not pulled for AGE (e.g. 30d)")
    parser.add_argument("--grace", metavar="AGE", default="1h",
                        help="never remove content younger than this (default 1h)")


def _gc(config: Config, args: argparse.Namespace) -> int:
    options = GcOptions(
        dry_run=args.dry_run, untagged=args.untagged,
        max_size=parse_size(args.max_size) if args.max_size else None,
        older_than=_duration(args.older_than, "--older-than") if args.older_than else None,
        grace=_duration(args.grace, "--grace"),
        upload_expiry=config.uploads.expiry,
    )
    services = _existing_store(config)
    report = collect_garbage(config.storage.root, options, services.is_mirrored)
    verb = "would free" if args.dry_run else "freed"
    for manifest in report.manifests_removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {manifest}")
    return Progress("gc").finish(f"gc {verb} {human_bytes(report.bytes_freed)} ({report.blobs_removed} blobs, "
                                 f"{len(report.manifests_removed)} manifests, {report.uploads_removed} upload "
                                 f"sessions, {report.leftovers_removed} leftovers); "
                                 f"{human_bytes(report.bytes_kept)} kept")


GC = Command("gc", "remove content nothing references", _gc_arguments, _gc)


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repair", action="store_true", help="quarantine corrupted blobs, drop broken links")


def _verify(config: Config, args: argparse.Namespace) -> int:
    services = _existing_store(config)
    return verify(config.storage.root, args.repair, services.is_mirrored, Progress("verify"), config.uploads.expiry)


VERIFY = Command("verify", "re-hash blobs, check links, manifests and tags", _verify_arguments, _verify)


def _hosts_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", help="the address clients use (default from config)")
    parser.add_argument("--mirror-of", default="docker.io", help="registries to mirror, comma separated")


def _hosts(config: Config, args: argparse.Namespace) -> int:
    registries = [name.strip() for name in args.mirror_of.split(",") if name.strip()]
    print(render(config, registries), end="")
    return 0


HOSTS = Command("hosts", "print client configuration for this server", _hosts_arguments, _hosts)

TOOLS = (SEED, EXPORT, IMPORT, GC, VERIFY, HOSTS)
COMMANDS: dict[str, Runner] = {command.name: command.run for command in TOOLS}


def add_commands(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Every tool's subcommand, in the order `ocireg --help` lists them."""
    for command in TOOLS:
        parser = subparsers.add_parser(command.name, help=command.help)
        common_options(parser)
        command.arguments(parser)


def run(command: str, config: Config, args: argparse.Namespace) -> int:
    return COMMANDS[command](config, args)


__all__ = ["COMMANDS", "CommandError", "UsageError", "add_commands", "common_options", "parse_size", "run"]
