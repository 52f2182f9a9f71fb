"""The ``megatron`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from megatron.plugins import get_plugin_manager


def _plugins(args: argparse.Namespace) -> int:
    manager = get_plugin_manager()
    for info in manager.plugins:
        print(f"{info.name} ({info.distribution} {info.version})")
        for kind, names in manager.registrations(info.name).items():
            if names:
                print(f"  {kind}: {', '.join(names)}")
    for (kind, name), entries in manager.registry.conflicts.items():
        owners = ", ".join(e.distribution for e in entries)
        print(f"conflict: {kind} {name!r} is registered by {owners}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="megatron", description="Megatron data pipelines.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins, their versions and what each registers",
        description="List installed plugins, their versions and what each registers.",
    )
    plugins.set_defaults(handler=_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
