"""The failure every tool command reports the same way: one line, `ocireg <command>: <message>`."""

from __future__ import annotations


class CommandError(Exception):
    """The command could not do its work; the message names the file or image and why."""
