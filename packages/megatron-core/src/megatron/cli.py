"""The ``megatron`` command: plugins, and a saved pipeline's summary, graph and audit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from megatron.errors import MegatronError


def _plugins(args: argparse.Namespace) -> int:
    from megatron.plugins import get_plugin_manager

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


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from megatron.persistence import load_pipeline

    return load_pipeline(args.file, trusted=args.trusted)


def _summary(args: argparse.Namespace) -> int:
    print(_load(args).summary())
    return 0


def _plot(args: argparse.Namespace) -> int:
    path = _load(args).plot(args.output, rankdir=args.rankdir, show_shapes=not args.no_shapes)
    print(path)
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
        print(line)
    if report.refused:
        print(
            f"megatron audit: loading would refuse {len(report.refused)} entries (REFUSED above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from megatron.demo import main

    main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="megatron", description="Megatron data pipelines.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, handler: object) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        sub.set_defaults(handler=handler)
        return sub

    command("plugins", "list installed plugins, their versions and what each registers", _plugins)
    for name, help, handler in (
        ("summary", "print the summary table of a saved pipeline", _summary),
        ("plot", "draw a saved pipeline's graph (PNG, SVG, PDF or DOT by the output's extension)", _plot),
    ):
        sub = command(name, help, handler)
        sub.add_argument("file", help="a pipeline file written by Pipeline.save()")
        sub.add_argument(
            "--trusted",
            action="append",
            default=[],
            metavar="TYPE",
            help="a type to trust in scikit-learn artifacts (repeatable)",
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
    command("demo", "run the getting-started tutorial (needs megatron-keras and megatron-sql)", _demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except MegatronError as exc:
        print(f"megatron {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
