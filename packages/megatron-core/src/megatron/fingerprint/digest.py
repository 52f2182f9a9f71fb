"""The digest a walk feeds: tagged bytes into a hash, the slots read recorded as probes, and
the values already met numbered, so that one met again (or holding itself) is a reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from megatron.fingerprint.probes import Probe

_D = TypeVar("_D", bound="Digest")


class Unreadable(Exception):
    """An object's state cannot be read in full: some of it lives in C, or its attributes hold
    more than :data:`~megatron.fingerprint.BUDGET` values."""


class Digest:
    """Feeds the identifying bytes of values to a hash and, where ``probes`` is a list, records
    each slot it read there. A subclass says how a value is read (:meth:`value`)."""

    def __init__(
        self,
        probes: list[Probe] | None,
        *,
        portable: bool = False,
        seen: dict[int, int] | None = None,
        limit: int | None = None,
        strict: bool = False,
    ) -> None:
        import hashlib  # here, not at import: ``import megatron`` stays light

        self.hash = hashlib.sha256()
        self.probes = probes
        self.portable = portable
        self.seen: dict[int, int] = {} if seen is None else seen
        self.alive: list[Any] = []  # ids in ``seen`` stay unique while the walk runs
        self.limit = limit
        self.count = 0
        self.strict = strict  # everything must be read by content, or Unreadable is raised

    def put(self, tag: str, payload: str | bytes = b"") -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.hash.update(b"%s %d:" % (tag.encode(), len(data)))
        self.hash.update(data)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()

    def value(self, v: Any) -> None:
        """Feed ``v``, read by what it holds."""
        raise NotImplementedError

    def slot(self, get: Callable[[Any], Any], key: Any, value: Any) -> None:
        """Read ``value`` from a slot: recorded for the memo, then walked."""
        if self.probes is not None:
            self.probes.append((get, key, value))
        self.value(value)

    def _child(self: _D, limit: int | None, strict: bool | None = None) -> _D:
        """A walk of a part apart, which sees the values met so far as met."""
        return type(self)(
            None if self.probes is None else [],
            portable=self.portable,
            seen=dict(self.seen),
            limit=limit,
            strict=self.strict if strict is None else strict,
        )

    def _adopt(self, child: Digest, counted: bool = True) -> None:
        self.seen.update(child.seen)
        self.alive.append(child.alive)
        if self.probes is not None and child.probes is not None:
            self.probes.extend(child.probes)
        if counted:
            self._counted(child.count)
        self.put("part", child.hash.digest())

    def _counted(self, n: int) -> None:
        self.count += n
        if self.limit is not None and self.count > self.limit:
            raise Unreadable

    def _track(self, value: Any) -> bool:
        """Note a value that may be met again (or hold itself); False, with a reference to
        where it was first met, when it was met before."""
        number = self.seen.get(id(value))
        if number is not None:
            self.put("ref", b"%d" % number)
            return False
        self.seen[id(value)] = len(self.seen)
        self.alive.append(value)
        return True
