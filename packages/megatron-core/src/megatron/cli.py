"""The ``megatron`` command: plugins, and a saved pipeline's summary, graph and audit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from megatron.errors import MegatronError

if TYPE_CHECKING:
    from megatron.outline import Outline


def _plugins(args: argparse.Namespace) -> int:
    import warnings

    from megatron.plugins import get_plugin_manager

    manager = get_plugin_manager()
    with warnings.catch_warnings():  # a broken plugin is listed below, not raised or printed twice
        warnings.simplefilter("ignore")
        manager.load()
    for info in manager.plugins:
        print(f"{info.name} ({info.distribution} {info.version})")
        for kind, names in manager.registrations(info.name).items():
            if names:
                print(f"  {kind}: {', '.join(names)}")
    for failure in manager.failures:
        print(f"{failure.info.name} ({failure.info.distribution} {failure.info.version}): FAILED, not loaded")
        print(f"  error: {failure.error}")
    for skipped in manager.skipped:
        print(f"{skipped.info.name} ({skipped.info.distribution} {skipped.info.version}): not loaded")
        print(f"  {skipped.reason}")
    for note in manager.notes:
        print(f"warning: {note}", file=sys.stderr)
    for (kind, name), entries in manager.registry.conflicts.items():
        owners = ", ".join(e.distribution for e in entries)
        print(f"conflict: {kind} {name!r} is registered by {owners}", file=sys.stderr)
    return 0


def _outline(args: argparse.Namespace) -> Outline:
    from megatron.persistence.describe import outline_file

    return outline_file(args.file)


def _summary(args: argparse.Namespace) -> int:
    from megatron.summary import render

    print(render(_outline(args)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from megatron.viz import plot

    print(plot(_outline(args), args.output, rankdir=args.rankdir, show_shapes=not args.no_shapes))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from megatron.persistence import audit_report

    limits = {}
    for item in args.limit:
        name, _, value = item.partition("=")
        if not value.strip().isdigit():
            print(f"megatron audit: --limit takes NAME=INTEGER; got {item!r}", file=sys.stderr)
            return 2
        limits[name.strip()] = int(value)
    report = audit_report(args.file, limits=limits)
    for line in report.lines:
        print(_printable(line))
    if report.refused:
        print(
            f"megatron audit: loading would refuse {len(report.refused)} entries (REFUSED above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _printable(text: str) -> str:
    """``text`` from a file, shown safely on a terminal (see ``describe.printable``)."""
    from megatron.persistence.describe import printable

    return printable(text)


def _version() -> str:
    from importlib.metadata import version

    return f"megatron {version('megatron-core')}"


def _demo(args: argparse.Namespace) -> int:
    from megatron.demo import main

    main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="megatron", description="Megatron data pipelines.")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, handler: object) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        sub.set_defaults(handler=handler)
        return sub

    command(
        "plugins",
        "list installed plugins, their versions and what each registers, and those that failed or are left out",
        _plugins,
    )
    for name, help, handler in (
        ("summary", "print the summary table of a saved pipeline, read from its description alone", _summary),
        ("plot", "draw a saved pipeline's graph (PNG, SVG, PDF or DOT by the output's extension)", _plot),
    ):
        sub = command(name, help, handler)
        sub.add_argument(
            "file",
            help="a pipeline file written by Pipeline.save(); read without loading it: no custom objects, "
            "no plugin libraries needed (run 'megatron audit FILE' for what loading would need)",
        )
        if name == "plot":
            sub.add_argument("-o", "--output", required=True, help="the image to write")
            sub.add_argument(
                "--rankdir", default="TB", choices=["TB", "LR", "BT", "RL"], help="graph direction"
            )
            sub.add_argument("--no-shapes", action="store_true", help="leave the output shapes out")
    audit = command(
        "audit",
        "list a pipeline file's members with their sizes and every class and function it would need, "
        "without loading it; exit 1 if loading would refuse some of it",
        _audit,
    )
    audit.add_argument("file", help="a pipeline file written by Pipeline.save()")
    audit.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=BYTES",
        help="a loading limit to check against instead of its default, e.g. max_ratio=1000 (repeatable; "
        "see megatron.persistence.Limits)",
    )
    command(
        "demo",
        "run the getting-started tutorial in the current folder (needs megatron-keras and megatron-sql)",
        _demo,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except MegatronError as exc:  # its message may quote the file: shown escaped, line by line
        message = "\n".join(_printable(line) for line in str(exc).split("\n"))
        print(f"megatron {args.command}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
