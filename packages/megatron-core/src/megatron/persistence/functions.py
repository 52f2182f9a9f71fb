"""Functions in a saved pipeline: how they are recorded, and bound again when it is loaded.

A function is saved by reference, never as code. A Python function is recorded as
``module:qualname@line#digest``: where it is defined, the line it starts on, and a digest of
what it computes (:func:`megatron.fingerprint.function_digest`), so two lambdas of one module
are told apart. Other callables (numpy ufuncs, builtins) are recorded as ``module:qualname``,
as files of earlier versions recorded every function.

Loading binds each recorded function to one of ``custom_objects`` (or to the numpy function
of that name), under the most specific key given among, for ``name`` the last part of the
qualified name::

    module:qualname@line#digest   qualname@line#digest   name@line#digest
    module:qualname@line          qualname@line          name@line
    module:qualname               qualname               name

A function recorded from numpy (``numpy:sqrt``) binds numpy's function, unless
``custom_objects`` names it with its module (``{"numpy:sqrt": ...}``): a function of yours
that is merely called ``sqrt`` never replaces it.

A key that would bind two different recorded functions is refused, and the error names a key
for each one; so is a function that computes what the file records for another one (the
bindings look swapped). A function whose digest differs from the one recorded (edited since,
capturing other values, or saved by another Python version) is bound, with a
:class:`FunctionChangedWarning`.
"""

from __future__ import annotations

import re
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from megatron.errors import PersistenceError

_DIGEST = re.compile(r"[0-9a-f]{16}")


class FunctionChangedWarning(UserWarning):
    """A function bound on load does not compute what the saved pipeline's function computed."""


@attrs.frozen
class FunctionRecord:
    """A recorded function: ``module:qualname``, with ``@line#digest`` for Python functions."""

    module: str
    qualname: str
    line: int | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> FunctionRecord:
        base, line, digest = text, None, None
        head, sep, tail = base.rpartition("#")
        if sep and _DIGEST.fullmatch(tail):
            base, digest = head, tail
        head, sep, tail = base.rpartition("@")
        if sep and tail.isdigit():
            base, line = head, int(tail)
        module, _, qualname = base.partition(":")
        return cls(module, qualname, line, digest)

    @property
    def name(self) -> str:
        """The last part of the qualified name (``f`` for ``make.<locals>.f``)."""
        return self.qualname.rsplit(".", 1)[-1]

    def binding_keys(self) -> list[str]:
        """The ``custom_objects`` keys that name this function, the most specific first. A
        function of numpy is named only with its module (``numpy:sqrt``): a function of the
        caller's that is also called ``sqrt`` does not replace it."""
        names = [f"{self.module}:{self.qualname}", self.qualname, self.name]
        if _numpy_function(self) is not None:
            names = names[:1]
        suffixes = [""]
        if self.line is not None:
            suffixes.insert(0, f"@{self.line}")
            if self.digest is not None:
                suffixes.insert(0, f"@{self.line}#{self.digest}")
        return list(dict.fromkeys(name + suffix for suffix in suffixes for name in names))

    def describe(self) -> str:
        line = "" if self.line is None else f", line {self.line}"
        return f"{self.qualname!r} (module {self.module or 'unknown'}{line})"


def function_name(function: Any) -> str:
    """``module:qualname`` of a function or class."""
    module = getattr(function, "__module__", None) or ""
    return f"{module}:{getattr(function, '__qualname__', getattr(function, '__name__', repr(function)))}"


def function_record(function: Any) -> str:
    """How the pipeline description records ``function``."""
    name = function_name(function)
    target = getattr(function, "__func__", function)  # a bound method: its function's line
    if not isinstance(target, types.FunctionType):
        return name
    from megatron.fingerprint import function_digest

    return f"{name}@{target.__code__.co_firstlineno}#{function_digest(function)}"


def resolve_function(name: str, custom_objects: Mapping[str, Any]) -> Callable[..., Any]:
    """The function recorded as ``name``: from ``custom_objects`` under its most specific key
    given, or a numpy function. Nothing is imported from the file."""
    record = FunctionRecord.parse(name)
    key = _given_key(record, custom_objects)
    if key is not None:
        return custom_objects[key]
    function = _numpy_function(record)
    if function is None:
        raise PersistenceError(
            f"The pipeline needs the function {record.describe()}: pass it as "
            f"load_pipeline(..., custom_objects={{{record.name!r}: ...}})"
        )
    return function


def bind_functions(names: Iterable[str], custom_objects: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """Every function recorded in a file (``names``, as :func:`needed_functions` lists them),
    bound as :func:`resolve_function` binds it, after checking that no key binds two of them
    and that each computes what was recorded: see the module's documentation."""
    records = {text: FunctionRecord.parse(text) for text in names}
    claims: dict[str, list[str]] = {}
    for text, record in records.items():
        for name in record.binding_keys():
            claims.setdefault(name, []).append(text)
    bound: dict[str, Callable[..., Any]] = {}
    given: dict[str, str] = {}
    for text, record in records.items():
        key = _given_key(record, custom_objects)
        if key is None:
            function = _numpy_function(record)
            if function is None:
                raise PersistenceError(
                    f"The pipeline needs the function {record.describe()}: pass it as "
                    f"load_pipeline(..., custom_objects={{{_own_key(text, record, claims)!r}: ...}})"
                )
            bound[text] = function
            continue
        if len(claims[key]) > 1:
            shown = ", ".join(records[t].describe() for t in claims[key])
            raise PersistenceError(
                f"custom_objects[{key!r}] would bind {len(claims[key])} different functions the pipeline "
                f"records: {shown}. Bind each one under its own key: {_bindings(claims[key], records, claims)}"
            )
        bound[text], given[text] = custom_objects[key], key
    _check_digests(records, bound, given, claims)
    return bound


def needed_functions(value: Any) -> list[str]:
    """The functions a described value needs, as recorded, each once."""
    found: dict[str, None] = {}
    _collect(value, found)
    return list(found)


def _collect(value: Any, found: dict[str, None]) -> None:
    if isinstance(value, list):
        for v in value:
            _collect(v, found)
    elif isinstance(value, dict):
        if "__function__" in value:
            found[value["__function__"]] = None
        for v in value.values():
            _collect(v, found)


def _given_key(record: FunctionRecord, custom_objects: Mapping[str, Any]) -> str | None:
    return next((key for key in record.binding_keys() if key in custom_objects), None)


def _numpy_function(record: FunctionRecord) -> Callable[..., Any] | None:
    if record.module == "numpy" and "." not in record.qualname:
        function = getattr(np, record.qualname, None)
        if callable(function):
            return function
    return None


def _own_key(text: str, record: FunctionRecord, claims: Mapping[str, list[str]]) -> str:
    """The shortest key that names this recorded function and no other."""
    ranked = sorted(
        record.binding_keys(), key=lambda key: (key.count("#"), key.count("@"), ":" in key, len(key))
    )
    return next((key for key in ranked if claims.get(key) == [text]), text)


def _bindings(
    texts: list[str], records: Mapping[str, FunctionRecord], claims: Mapping[str, list[str]]
) -> str:
    keys = ", ".join(f"{_own_key(t, records[t], claims)!r}: ..." for t in texts)
    return f"load_pipeline(..., custom_objects={{{keys}}})"


def _check_digests(
    records: Mapping[str, FunctionRecord],
    bound: Mapping[str, Callable[..., Any]],
    given: Mapping[str, str],
    claims: Mapping[str, list[str]],
) -> None:
    from megatron.fingerprint import function_digest

    for text, key in given.items():
        record = records[text]
        if record.digest is None:
            continue
        try:
            digest = function_digest(bound[text])
        except Exception:  # an object the digest cannot read: nothing to compare
            continue
        if digest == record.digest:
            continue
        twins = [t for t, r in records.items() if t != text and r.digest == digest]
        if twins:
            pair = [text, *twins]
            raise PersistenceError(
                f"custom_objects[{key!r}], bound to the function recorded as {record.describe()}, computes "
                f"what the pipeline records for {records[twins[0]].describe()}: the bindings look swapped. "
                f"Bind each one under its own key: {_bindings(pair, records, claims)}"
            )
        warnings.warn(
            FunctionChangedWarning(
                f"custom_objects[{key!r}] does not compute what the saved pipeline's function "
                f"{record.describe()} computed: it was edited, captures other values, or the file was "
                "saved by another Python version. The loaded pipeline runs the function given; its "
                "fingerprint follows that function, so outputs stored with the saved one are not served "
                "from the cache."
            ),
            stacklevel=4,
        )
