"""The ``megatron`` command: plugins, and a saved pipeline's summary, graph and audit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from megatron.errors import MegatronError, MissingDependencyError, PluginConflictError, PluginError

if TYPE_CHECKING:
    from megatron.outline import Outline
    from megatron.plugins import Command, Entry


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
    options = _serializer_options(args.serializer_option)
    if isinstance(options, str):
        print(
            f"megatron audit: --serializer-option takes FORMAT:NAME=VALUE; got {options!r}", file=sys.stderr
        )
        return 2
    report = audit_report(args.file, limits=limits, serializer_options=options)
    for line in report.lines:
        print(_printable(line))
    if report.refused:
        print(
            f"megatron audit: loading would refuse {len(report.refused)} entries (REFUSED above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _serializer_options(items: list[str]) -> dict[str, dict[str, list[str]]] | str:
    """``--serializer-option FORMAT:NAME=VALUE`` items as ``serializer_options`` (the values given
    for one option form a list), or the first item not of that form."""
    options: dict[str, dict[str, list[str]]] = {}
    for item in items:
        key, equals, value = item.partition("=")
        serializer, colon, option = key.partition(":")
        if not (equals and colon and serializer.strip() and option.strip()):
            return item
        options.setdefault(serializer.strip(), {}).setdefault(option.strip(), []).append(value)
    return options


def _printable(text: str) -> str:
    """``text`` from a file, shown safely on a terminal (see ``describe.printable``)."""
    from megatron.persistence.describe import printable

    return printable(text)


def _version() -> str:
    from importlib.metadata import version

    return f"megatron {version('megatron-core')}"


def _plugin_commands(commands: Any) -> None:
    """Add the subcommands that plugins register (``register_commands``) to ``commands``; a
    megatron command of the same name stays, and the plugin's is left out with a warning."""
    from megatron.plugins import get_registry

    registry = get_registry()
    for name in registry.names("command"):
        if name in commands.choices:
            owners = " and ".join(str(entry.provider) for entry in registry.candidates("command", name))
            print(
                f"warning: the command {name!r} of {owners} is left out: megatron has its own",
                file=sys.stderr,
            )
            continue
        try:
            entry = registry.entry("command", name)
        except PluginConflictError as exc:  # the command says so when it is run
            commands.add_parser(name, help="registered by two plugins: run it to see which").set_defaults(
                handler=_raises(exc)
            )
            continue
        command: Command = entry.resolve()
        sub = commands.add_parser(
            name,
            help=f"{command.help} [{entry.distribution}]",
            description=command.help[0].upper() + command.help[1:] + ".",
        )
        sub.set_defaults(handler=_run_plugin_command(entry, command))
        if command.arguments is not None:
            try:
                command.arguments(sub)
            except Exception as exc:  # one broken plugin command breaks no other command
                error = PluginError(
                    f"{entry.provider}: the arguments of the command {name!r} failed: {exc!r}"
                )
                sub.set_defaults(handler=_raises(error))


def _run_plugin_command(entry: Entry, command: Command) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            function = command.function()
        except Exception as exc:
            raise PluginError(
                f"{entry.provider} registers the command {entry.name!r} as {command.run!r}, which cannot be "
                f"imported: {exc}"
            ) from exc
        status = function(args)
        return 0 if status is None else int(status)

    return handler


def _raises(error: MegatronError) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise error

    return handler


def _unavailable(word: str) -> MegatronError | None:
    """The error for a command no loaded plugin provides, when the plugin catalogue knows which
    package does (``None`` otherwise: argparse says the command is unknown)."""
    from megatron.plugins import get_registry

    try:
        get_registry().entry("command", word)
    except MissingDependencyError as exc:
        return exc
    except MegatronError:
        return None
    return None


def build_parser(plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The ``megatron`` command's parser: megatron's own commands, then (``plugin_commands``)
    those the installed plugins register."""
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
    audit.add_argument(
        "--serializer-option",
        action="append",
        default=[],
        metavar="FORMAT:NAME=VALUE",
        help="an option of the serializer of a format, as load_pipeline(serializer_options=...) takes it, "
        "e.g. FORMAT:trusted=package.module.Class, a FORMAT being a serializer 'megatron plugins' lists "
        "(repeatable; the values given for one option form a list)",
    )
    if plugin_commands:
        _plugin_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    word = next((arg for arg in argv if not arg.startswith("-")), None)  # the command
    own = build_parser(plugin_commands=False)
    if word is not None and word in _choices(own):
        parser = own  # megatron's own command: no plugin loaded for it
    else:
        parser = build_parser()
        missing = _unavailable(word) if word is not None and word not in _choices(parser) else None
        if missing is not None:
            print(f"megatron {word}: {missing}", file=sys.stderr)
            return 1
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except MegatronError as exc:  # its message may quote the file: shown escaped, line by line
        message = "\n".join(_printable(line) for line in str(exc).split("\n"))
        print(f"megatron {args.command}: {message}", file=sys.stderr)
        return 1


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    """The command names ``parser`` takes (argparse keeps them on its subparsers action)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [name for action in actions for name in action.choices]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
