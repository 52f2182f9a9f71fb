"""Hyperparameters by introspection: the ``__init__`` parameters stored as same-named attributes.

Layers and metrics also keep the arguments their ``__init__`` was called with
(:func:`recording_arguments`), so that a hyperparameter stored under another attribute
(``self._f = factor``) is still known, and saved, under its own name.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

ARGUMENTS = "_init_arguments"
"""Where an instance keeps the arguments of its ``__init__`` call (in its ``__dict__``)."""


def _named_parameters(cls: type) -> tuple[str, ...]:
    params = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return tuple(
        p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )


def _variadic_parameters(cls: type) -> tuple[str | None, str | None]:
    params = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    positional = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)
    keywords = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
    return positional, keywords


# cached per class (the hyperparameter check runs on every attribute a layer sets)
init_parameters: Callable[[type], tuple[str, ...]] = functools.cache(_named_parameters)
"""The names of ``cls.__init__``'s parameters, without ``self``, ``*args`` and ``**kwargs``."""
_variadic: Callable[[type], tuple[str | None, str | None]] = functools.cache(_variadic_parameters)
"""The names of ``cls.__init__``'s ``*args`` and ``**kwargs`` parameters (None if absent)."""


def init_config(obj: Any) -> dict[str, Any]:
    """``obj``'s ``__init__`` parameters read from the attributes of the same names (the
    scikit-learn convention), else from the arguments its ``__init__`` was given; skipping
    ``*args`` and unset ones. Keywords given through ``**kwargs`` come last."""
    config = {name: getattr(obj, name) for name in init_parameters(type(obj)) if hasattr(obj, name)}
    keywords = _variadic(type(obj))[1]
    if keywords is not None:
        for name, value in obj.__dict__.get(ARGUMENTS, {}).get(keywords, {}).items():
            config.setdefault(name, value)
    return config


def recorded_argument(obj: Any, name: str) -> Any:
    """The argument ``obj``'s ``__init__`` was given for parameter ``name``; AttributeError if
    there is none (for a ``__getattr__`` fallback)."""
    arguments = obj.__dict__.get(ARGUMENTS)
    if arguments is not None and name in arguments and name in init_parameters(type(obj)):
        return arguments[name]
    raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")


def recording_arguments(init: Callable[..., None], keep: Callable[[Any], Any]) -> Callable[..., None]:
    """``init``, also keeping (each through ``keep``) the arguments of the outermost
    ``__init__`` call of an instance, defaults included."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self).__init__ is __init__:  # the class's own __init__, not a super() call
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:
                pass  # the call itself raises the natural TypeError
            else:
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                arguments.pop(next(iter(signature.parameters)), None)  # self
                self.__dict__[ARGUMENTS] = {name: _kept(value, keep) for name, value in arguments.items()}
        init(self, *args, **kwargs)

    __init__._records_arguments = True  # type: ignore[attr-defined]
    return __init__


def _kept(value: Any, keep: Callable[[Any], Any]) -> Any:
    return tuple(keep(v) for v in value) if type(value) is tuple else keep(value)


def record_arguments_of(cls: type, keep: Callable[[Any], Any]) -> None:
    """Wrap the ``__init__`` that ``cls`` defines (if any) with :func:`recording_arguments`."""
    init = cls.__dict__.get("__init__")
    if inspect.isfunction(init) and not hasattr(init, "_records_arguments"):
        cls.__init__ = recording_arguments(init, keep)  # type: ignore[misc]


def saved_config(obj: Any, where: str) -> dict[str, Any]:
    """``obj.get_config()``, checked to give back everything its ``__init__`` was given, so that
    a reloaded object is built with the same arguments; a
    :class:`~megatron.errors.PersistenceError` naming ``where`` and the argument otherwise."""
    from megatron.errors import PersistenceError

    config = obj.get_config()
    cls = type(obj)
    arguments = obj.__dict__.get(ARGUMENTS, {})
    positional, keywords = _variadic(cls)
    if positional is not None and arguments.get(positional):
        raise PersistenceError(
            f"Cannot save {where}: its __init__ took positional arguments *{positional} "
            f"{arguments[positional]!r}, which cannot be given back by name; take them as named "
            "parameters stored as same-named attributes."
        )
    given = [name for name in init_parameters(cls) if name in arguments]
    if keywords is not None:
        given += list(arguments.get(keywords, {}))
    lost = [name for name in given if name not in config]
    required = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self"
        and p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in config
    ]
    missing = list(dict.fromkeys(lost + required))
    if missing:
        raise PersistenceError(
            f"Cannot save {where}: its configuration (get_config()) lacks the __init__ argument(s) "
            f"{missing}, so the reloaded copy would not be built as this one. Store each "
            "hyperparameter as an attribute of the same name, or return it from get_config()."
        )
    return config
