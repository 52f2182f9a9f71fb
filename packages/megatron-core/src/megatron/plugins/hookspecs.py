"""The hooks a megatron plugin implements.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`, published
under the ``megatron`` entry-point group::

    [project.entry-points.megatron]
    myplugin = "myplugin.plugin"

The ``register_*`` hooks receive a ``register(name, target)`` callback. ``target`` is the
object itself or, to keep imports lazy, a ``"module:attribute"`` string that is imported
the first time the name is used. Plugin modules should import nothing heavy at top level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from megatron.layers.base import Layer
    from megatron.pipeline import Pipeline
    from megatron.storage.base import Storage

PROJECT = "megatron"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[str, Any], None]
"""``register(name, target)``: ``target`` is an object or a lazy ``"module:attribute"`` path."""


@hookspec
def register_layers(register: Register) -> None:
    """Register layer classes, available as ``megatron.layers.<name>``."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric classes, available as ``megatron.metrics.<name>``."""


@hookspec
def register_sources(register: Register) -> None:
    """Register data sources and batch generators, available as ``megatron.io.<name>``."""


@hookspec
def register_storage(register: Register) -> None:
    """Register storage backends by URL scheme (``"memory"``, ``"sqlite"``).

    The target is a :class:`~megatron.storage.base.Storage` class whose ``open(url, name,
    version)`` class method returns the storage of one pipeline. A URL ``dialect+driver://``
    is looked up as ``dialect+driver``, then as ``dialect``.
    """


@hookspec
def register_serializers(register: Register) -> None:
    """Register serializers for fitted state that is not plain arrays, by format name."""


@hookspec
def register_executors(register: Register) -> None:
    """Register executors (objects with ``run(plan, feeds)``) by name."""


@hookspec
def register_commands(register: Register) -> None:
    """Register subcommands of the ``megatron`` command, by name (lower-case letters, digits
    and ``-``): ``register("demo", Command("run the tutorial", run="myplugin.demo:run"))``.

    The target is a :class:`~megatron.plugins.Command` itself (``megatron --help`` lists its
    help line without importing anything); its ``run`` may be a lazy ``"module:function"``
    path. The built-in commands (``plugins``, ``summary``, ``plot``, ``audit``) cannot be
    replaced: a plugin command of one of their names is left out, with a warning.
    """


@hookspec
def default_storage_url() -> str | None:
    """The storage URL that ``storage='default'`` opens, or None for no opinion.

    ``MEGATRON_STORAGE`` overrides it. The URL is opened as any other, so its scheme is one a
    plugin registers with ``register_storage``. Two plugins that answer different URLs are a
    conflict: ``storage='default'`` then raises ``PluginConflictError`` naming both (set
    ``MEGATRON_STORAGE``, or disable one). With no plugin answering, it raises an error saying
    what to install or pass instead.
    """


@hookspec(firstresult=True)
def adapt_layer(obj: Any) -> Layer | None:
    """Wrap a foreign object (an sklearn estimator, a Keras model) as a layer, or return None.

    Implementations recognise objects without importing their library (check the type's
    module name first), so that unrelated objects cost nothing.
    """


@hookspec(firstresult=True)
def run_operation(pipeline: Pipeline, operation: str, data: Any, options: Mapping[str, Any]) -> Any:
    """Run ``pipeline``'s ``operation`` (``"fit"``, ``"transform"``, ``"evaluate"``) on ``data``
    of a type the core does not read itself (a distributed collection), with the operation's
    keyword ``options`` (``index``, ``cache``, ``progress``), and return what the operation
    returns; or return None to leave the data to another plugin.

    The core asks only for data it does not know: neither a mapping of arrays, a megatron
    batch nor a pandas DataFrame, or a mapping holding arrays of another library.
    Implementations recognise the data by the module name of its type (or of its values'),
    without importing their library for anything else.
    """


@hookspec(firstresult=True)
def adapt_storage(obj: Any, name: str, version: str | None) -> Storage | None:
    """Open the storage of pipeline ``name``/``version`` on a foreign object (a database
    connection or engine), or return None."""
