"""Plugin subcommands of ``megatron`` (``register_commands``): listed by ``megatron --help``,
run with their arguments, a conflict said when run, megatron's own commands never replaced,
and a command of a catalogued plugin that is not loaded says what to install."""

from __future__ import annotations

import contextlib
import io
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron.cli import build_parser, main
from megatron.errors import ConfigError, PluginError
from megatron.plugins import Command, PluginLoadWarning, get_plugin_manager, get_registry, hookimpl
from megatron.plugins.catalogue import KNOWN

OWN = ("plugins", "summary", "plot", "audit")
calls: list[tuple[str, object]] = []


def hello(args):
    calls.append(("hello", args.name))
    print(f"hello, {args.name}")


class HelloPlugin:
    @hookimpl
    def register_commands(self, register):
        register(
            "hello",
            Command("greet someone by name", run=hello, arguments=lambda parser: parser.add_argument("name")),
        )


def test_a_plugin_command_is_listed_and_runs_with_its_arguments(megatron_plugins, capsys):
    megatron_plugins(HelloPlugin(), "hello")
    listing = build_parser().format_help()
    assert re.search(r"hello\s+greet someone by name \[\(registered at runtime\)\]", listing)
    assert main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello, world\n"
    assert calls[-1] == ("hello", "world")
    assert get_plugin_manager().registrations("hello")["command"] == ["hello"]


def test_a_lazy_command_is_imported_when_it_runs(megatron_distribution, monkeypatch, capsys):
    plugin = """
from megatron.plugins import Command, hookimpl

@hookimpl
def register_commands(register):
    register("count", Command("count the arguments", run="counting_run:run",
                              arguments=lambda p: p.add_argument("items", nargs="*")))
"""
    run = """
def run(args):
    print(len(args.items))
    return 3
"""
    megatron_distribution("megatron-counting", "counting", {"counting_plugin": plugin, "counting_run": run})
    assert "count" in build_parser().format_help()
    import sys

    assert "counting_run" not in sys.modules  # listed without importing the command
    assert main(["count", "a", "b"]) == 3
    assert capsys.readouterr().out == "2\n"


def test_a_command_that_cannot_be_imported_names_its_plugin(megatron_plugins, capsys):
    class Broken:
        @hookimpl
        def register_commands(self, register):
            register("broken", Command("never runs", run="no_such_module_here:run"))

    megatron_plugins(Broken(), "broken")
    assert main(["broken"]) == 1
    err = capsys.readouterr().err
    assert "megatron broken: plugin 'broken'" in err and "'no_such_module_here:run'" in err


def test_a_command_whose_arguments_fail_breaks_no_other_command(megatron_plugins, capsys):
    def arguments(parser):
        raise RuntimeError("no such option")

    class Broken:
        @hookimpl
        def register_commands(self, register):
            register("broken", Command("never runs", run=hello, arguments=arguments))

    megatron_plugins(Broken(), "broken")
    megatron_plugins(HelloPlugin(), "hello")
    assert main(["hello", "you"]) == 0
    assert main(["broken"]) == 1
    assert (
        "the arguments of the command 'broken' failed: RuntimeError('no such option')"
        in capsys.readouterr().err
    )


def test_a_megatron_error_of_a_command_is_printed_with_exit_status_1(megatron_plugins, capsys):
    def refuse(args):
        raise ConfigError("expected a positive count; got -1")

    class Refusing:
        @hookimpl
        def register_commands(self, register):
            register("refuse", Command("refuse always", run=refuse))

    megatron_plugins(Refusing(), "refusing")
    assert main(["refuse"]) == 1
    assert capsys.readouterr().err == "megatron refuse: expected a positive count; got -1\n"


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("Hello", Command("x", run=hello), "a command name of lower-case letters"),
        ("hello world", Command("x", run=hello), "a command name of lower-case letters"),
        ("hello", hello, "takes a megatron.plugins.Command"),
        ("hello", Command("x", run="not a path"), "lazy 'module:attribute' path"),
    ],
)
def test_a_malformed_command_drops_its_plugin(megatron_plugins, name, target, message):
    class Malformed:
        @hookimpl
        def register_commands(self, register):
            register(name, target)

    with pytest.raises(PluginError, match=message):
        megatron_plugins(Malformed(), "malformed")


@pytest.mark.parametrize(("field", "value"), [("help", ""), ("run", 3), ("arguments", "not callable")])
def test_a_command_refuses_bad_fields(field, value):
    fields = {"help": "greet", "run": hello, field: value}
    with pytest.raises(ConfigError, match=f"Command\\({field}="):
        Command(**fields)


def test_a_catalogued_command_whose_plugin_is_not_loaded_says_what_to_install(monkeypatch, capsys):
    command = next(
        (known, name) for known in KNOWN for name in known.provides.get("command", ())
    )  # megatron-keras's demo
    monkeypatch.setenv("MEGATRON_PLUGINS", "core")
    from megatron.plugins import reset_plugin_manager

    reset_plugin_manager()
    try:
        assert main([command[1]]) == 1
    finally:
        reset_plugin_manager()
    err = capsys.readouterr().err
    assert f"megatron {command[1]}: The command {command[1]!r} comes from {command[0].name}" in err


def test_an_unknown_command_is_argparse_s_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["no-such-command"])
    assert exited.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


_plugins = itertools.count()


@settings(max_examples=30, deadline=None)
@given(
    name=st.one_of(st.sampled_from(OWN), st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)),
    twice=st.booleans(),
    status=st.integers(0, 5),
)
def test_any_command_name_runs_its_plugin_or_says_why_not(name, twice, status):
    """Whatever a plugin names its command: it runs and returns its status, or (taken by
    megatron itself) it is left out with a warning, or (registered twice) it fails naming both."""
    manager = get_plugin_manager()
    plugins = [f"commands_{next(_plugins)}" for _ in range(2 if twice else 1)]
    taken = set(get_registry().names("command"))  # by installed plugins (megatron-keras: demo)

    class Plugin:
        def __init__(self, answer):
            self.answer = answer

        @hookimpl
        def register_commands(self, register):
            register(name, Command("a generated command", run=lambda args: self.answer))

    try:
        for number, plugin in enumerate(plugins):
            manager.register(Plugin(status + number), plugin)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            if name in OWN:
                build_parser()
            else:
                assert main([name]) == (1 if twice or name in taken else status)
        if name in OWN:
            assert f"the command {name!r} of plugin {plugins[0]!r}" in err.getvalue()
        elif twice or name in taken:
            assert f"megatron {name}: The command {name!r} is registered by both" in err.getvalue()
    finally:
        for plugin in plugins:
            manager.unregister(plugin)


def test_loading_a_command_plugin_warns_about_nothing(megatron_plugins, recwarn):
    megatron_plugins(HelloPlugin(), "hello")
    build_parser()
    assert not [w for w in recwarn if issubclass(w.category, PluginLoadWarning)]
