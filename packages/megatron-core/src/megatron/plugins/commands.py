"""Subcommands that plugins add to the ``megatron`` command (``register_commands``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from megatron.errors import ConfigError
from megatron.plugins.registry import import_path

if TYPE_CHECKING:
    import argparse

Run = Callable[["argparse.Namespace"], "int | None"]
"""Runs the command on its parsed arguments; returns the exit status (None: 0)."""


@attrs.frozen
class Command:
    """A subcommand of ``megatron``, registered by a plugin with ``register_commands``::

        register("demo", Command("run the tutorial", run="myplugin.demo:run"))

    ``help`` is the line ``megatron --help`` shows. ``run`` is the function, or to keep
    ``megatron`` light a lazy ``"module:function"`` path imported when the command runs; it
    takes the parsed arguments and returns the exit status (None for 0), and a megatron error
    it raises is printed as ``megatron NAME: message`` with exit status 1. ``arguments``, if
    given, adds the command's arguments to its ``argparse`` parser.
    """

    help: str
    run: str | Run
    arguments: Callable[[argparse.ArgumentParser], None] | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.help, str) or not self.help.strip():
            raise ConfigError(f"Command(help=...) takes a line of text; got {self.help!r}")
        if not (isinstance(self.run, str) or callable(self.run)):
            raise ConfigError(
                f"Command(run=...) takes a function or a 'module:function' path; got {self.run!r}"
            )
        if self.arguments is not None and not callable(self.arguments):
            raise ConfigError(
                f"Command(arguments=...) takes a function of the parser; got {self.arguments!r}"
            )

    def function(self) -> Run:
        """``run``, imported if it is a lazy path."""
        return import_path(self.run) if isinstance(self.run, str) else self.run
