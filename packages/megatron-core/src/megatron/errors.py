"""The megatron exception hierarchy.

Every error megatron raises derives from :class:`MegatronError`. Where a built-in exception
type is the natural one to catch (``KeyError`` for a missing key, ``ValueError`` for a bad
value), the megatron class derives from it too, so both ``except`` clauses work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class MegatronError(Exception):
    """Base class of every error raised by megatron."""

    def __str__(self) -> str:
        # KeyError's __str__ would repr() the message; every subclass reads as plain text.
        return str(self.args[0]) if self.args else ""


# Graph construction --------------------------------------------------------------------------


class GraphError(MegatronError, ValueError):
    """A pipeline graph is malformed: an undeclared input, a duplicate or missing name."""


class SpecError(MegatronError, ValueError):
    """A layer cannot accept its inputs' shapes or dtypes (raised when the graph is built)."""


class ConfigError(MegatronError, ValueError):
    """A layer, metric, pipeline or executor was given a bad constructor argument."""


class ReadOnlyError(MegatronError, TypeError):
    """A layer's hyperparameter was edited in place; hyperparameters are read-only (assign a new value)."""


# Data given to a pipeline ---------------------------------------------------------------------


class DataError(MegatronError, ValueError):
    """Data given to a pipeline does not match what its inputs declare."""


class MissingInputError(DataError, KeyError):
    """An input the operation needs was not given."""


class InputShapeError(DataError):
    """An input array does not have the shape its `Input` declares."""


class InputDtypeError(DataError):
    """An input array cannot be cast to the dtype its `Input` declares."""


class LengthMismatchError(DataError):
    """Input arrays of one call hold different numbers of observations."""


class SourceError(DataError):
    """A data source cannot be read: a missing file, ragged rows, a dtype that changes."""


class MissingSourceError(SourceError, FileNotFoundError):
    """A source's file does not exist (also a ``FileNotFoundError``)."""


class UnknownOutputError(MegatronError, KeyError):
    """An output name that the pipeline or result does not have."""


# Running layers -------------------------------------------------------------------------------


class NotFittedError(MegatronError, RuntimeError):
    """A stateful layer was asked to transform before it was fitted."""


class IncrementalFitError(MegatronError, TypeError):
    """A layer that cannot be fitted incrementally was asked to (no ``partial_fit``)."""


class LayerError(MegatronError, RuntimeError):
    """A layer raised while it ran; the original exception is chained as ``__cause__``."""


class MetricError(MegatronError, RuntimeError):
    """A metric raised while it was updated; the original exception is chained as ``__cause__``."""


class LayerInputError(MegatronError, ValueError):
    """A layer received input it cannot work with (wrong ndim, dtype, an empty batch)."""


class NotInvertibleError(MegatronError, TypeError):
    """A layer, or a chain of layers, has no inverse: ``inverse_transform`` cannot map its
    outputs back to its input."""


# Storage --------------------------------------------------------------------------------------


class StorageError(MegatronError):
    """A storage backend could not be opened, written or read."""


class MissingKeyError(StorageError, KeyError):
    """Rows asked for by key are not in the storage."""


# Persistence ----------------------------------------------------------------------------------


class PersistenceError(MegatronError):
    """A pipeline cannot be saved, or a file cannot be loaded (unreadable, hostile, or needing
    classes and functions that were not provided)."""


# Plugins --------------------------------------------------------------------------------------


class PluginError(MegatronError):
    """A plugin is broken or misconfigured."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name."""


class UnknownNameError(PluginError, AttributeError):
    """No installed plugin registers the requested layer, metric, source or backend."""


# Installation ---------------------------------------------------------------------------------


class MissingDependencyError(MegatronError, ImportError):
    """A feature needs an optional library or plugin package that is not installed; the message
    names the package to install (from this repository) and ``name`` the missing module."""


def layer_failure(where: str, method: str, args: Sequence[Any], exc: Exception) -> MegatronError:
    """The megatron error for ``exc``, raised inside a layer's ``method``: says ``where`` (the
    node and layer, as :meth:`Call.describe <megatron.graph.call.Call.describe>` puts it) and
    the shapes of the arguments. A megatron error keeps its class, with the context prepended."""
    shapes = ", ".join(str(getattr(a, "shape", type(a).__name__)) for a in args)
    context = f"{where} failed in {method}() on inputs of shapes [{shapes}]"
    if isinstance(exc, MegatronError):
        try:
            return type(exc)(f"{context}: {exc}")
        except TypeError:  # an error class with its own constructor
            pass
    return LayerError(f"{context}: {type(exc).__name__}: {exc}")
