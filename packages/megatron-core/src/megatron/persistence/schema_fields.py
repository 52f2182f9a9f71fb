"""The plain fields of a pipeline file's description, checked one by one: objects with
exactly their fields, bounded texts, integers in a range, flags, lists, dtypes of plain values.

A field that does not fit is :class:`Refused` with where it is and why; the schema turns that
into a :class:`~megatron.errors.PersistenceError` naming the field. Errors show values with
:func:`preview`, built no longer than they are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MAX_TEXT = 4096  # names, class names, dtypes and tokens are short
_MAX_ITEMSIZE = 1 << 16
"""The largest value a file may declare a dtype of (``<U16384``): a dtype decides how many
bytes every transformed value takes."""
_SHOWN = 80  # characters of a value an error message shows


class Refused(Exception):
    """A field that does not fit the schema: where it is, and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where, self.reason = where, reason


def shown(value: Any) -> str:
    """A value from the file as an error shows it: its JSON kind and its :func:`preview`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kind = {dict: "object", list: "array", str: "string", int: "integer", float: "number"}.get(type(value))
    return f"{kind or type(value).__name__} {preview(value)}"


def preview(value: Any, limit: int = _SHOWN) -> str:
    """``value``'s repr, or its first ``limit`` characters followed by ``...``: built no
    further than that, so a huge value costs no more to show than a small one."""
    out: list[str] = []
    room = limit

    def put(text: str) -> bool:
        nonlocal room
        out.append(text[: max(room, 0)])
        room -= len(text)
        return room > 0

    def walk(item: Any) -> bool:
        if isinstance(item, dict | list | tuple):
            opening, closing = "{}" if isinstance(item, dict) else "()" if isinstance(item, tuple) else "[]"
            if not put(opening):
                return False
            for i, element in enumerate(item.items() if isinstance(item, dict) else item):
                if i and not put(", "):
                    return False
                if isinstance(item, dict):
                    key, element = element
                    if not (walk(key) and put(": ")):
                        return False
                if not walk(element):
                    return False
            if isinstance(item, tuple) and len(item) == 1 and not put(","):
                return False
            return put(closing)
        return put(repr(item[: limit + 1] if isinstance(item, str) else item))

    complete = walk(value)
    text = "".join(out)
    return text if complete and room >= 0 else text + "..."


class Fields:
    """Checks of the plain fields of a description, each naming ``where`` the field is."""

    def fields(self, value: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Refused(where, f"expected an object with {', '.join(required)}; got {shown(value)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise Refused(where, f"missing field {missing[0]!r}")
        extra = sorted(set(value) - set(required))
        if extra:
            raise Refused(where, f"unexpected field {extra[0]!r}")
        return value

    def text(self, value: Any, where: str, empty: bool = False) -> str:
        if not isinstance(value, str) or (not value and not empty) or len(value) > MAX_TEXT:
            wanted = "a string" if empty else "a non-empty string"
            raise Refused(where, f"expected {wanted} of at most {MAX_TEXT} characters; got {shown(value)}")
        return value

    def optional_text(self, value: Any, where: str) -> str | None:
        return None if value is None else self.text(value, where, empty=True)

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Refused(where, f"expected an integer from {low} to {high}; got {shown(value)}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise Refused(where, f"expected true or false; got {shown(value)}")
        return value

    def items(self, value: Any, where: str, item: Callable[[Any, str], Any]) -> list[Any]:
        if not isinstance(value, list):
            raise Refused(where, f"expected an array; got {shown(value)}")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def dtype(self, value: Any, where: str) -> str:
        """A dtype of plain values: not raw or structured (void), no larger than ``_MAX_ITEMSIZE``."""
        text = self.text(value, where)
        try:
            dtype = np.dtype(text)
        except Exception as exc:  # numpy raises TypeError, ValueError, SyntaxError...
            raise Refused(where, f"{preview(text)} is not a numpy dtype: {exc}") from None
        if dtype.kind == "V":
            raise Refused(where, f"{text!r} is a raw or structured (void) dtype: refused")
        if dtype.itemsize > _MAX_ITEMSIZE:
            raise Refused(
                where,
                f"{text!r} takes {dtype.itemsize} bytes per value; at most {_MAX_ITEMSIZE} are accepted: refused",
            )
        return text
