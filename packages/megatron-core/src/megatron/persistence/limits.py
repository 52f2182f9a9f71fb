"""How much a pipeline file may hold before loading refuses it.

Every size is checked from what the file declares, before anything is read or inflated, and
every byte then inflated from the file (at every level: its members, and the members of zip
archives inside them) counts against the same totals, so a small hostile file cannot make a
loader allocate gigabytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from megatron.arguments import positive_int
from megatron.errors import PersistenceError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limits:
    """Sizes a pipeline file may declare. Raise one for a file you trust that needs more::

        load_pipeline(path, limits=Limits(max_member_bytes=8 * GiB, max_total_bytes=16 * GiB))
        load_pipeline(path, limits={"max_ratio": 2000})   # a mapping works too

    A zip member or a whole file whose uncompressed size exceeds ``ratio_floor_bytes`` may
    inflate at most ``max_ratio`` times (deflate squeezes only constant data harder than that:
    a file holding large all-zero arrays may need a higher ratio).
    """

    max_file_bytes: int = 8 * GiB
    """The pipeline file on disk."""
    max_members: int = 10_000
    """Members in the file, and in each zip inside it (a skops or ``.keras`` artifact), counted
    in the zip's directory before it is parsed."""
    max_member_bytes: int = 2 * GiB
    """One member, uncompressed (an array, an artifact, or a member of an artifact)."""
    max_total_bytes: int = 4 * GiB
    """Everything inflated from the file by one load, audit or summary: its members, and the
    members of each zip inside them (an artifact counts once for itself and once for what it
    holds). A member read twice counts twice."""
    max_ratio: int = 100
    """Uncompressed over compressed size, for members, and for all that is inflated from the
    file against the file's size, once larger than ``ratio_floor_bytes``."""
    ratio_floor_bytes: int = 64 * MiB
    """Below this uncompressed size, any compression ratio is accepted."""
    max_description_bytes: int = 64 * MiB
    """``pipeline.json``, the description of the graph."""
    max_depth: int = 100
    """Nesting of lists and objects in ``pipeline.json``."""
    max_description_values: int = 1_000_000
    """Values in ``pipeline.json`` (each list, object, key, string, number, ``true``, ``false`` and
    ``null``), counted from its brackets, commas and colons before it is parsed: a small
    description of many values becomes many Python objects."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = positive_int(getattr(self, field.name), f"Limits.{field.name}", error=PersistenceError)
            object.__setattr__(self, field.name, int(value))  # a numpy integer as a plain one

    @classmethod
    def of(cls, value: Limits | Mapping[str, int] | None) -> Limits:
        """``value`` as limits: the defaults for ``None``, a mapping overriding some of them."""
        if value is None:
            return cls()
        if isinstance(value, Limits):
            return value
        if isinstance(value, Mapping):
            names = {field.name for field in dataclasses.fields(cls)}
            unknown = sorted(str(key) for key in value if key not in names)
            if unknown:
                raise PersistenceError(f"Unknown limits {unknown}; the limits are {sorted(names)}")
            return cls(**value)
        raise PersistenceError(
            f"limits= takes megatron.persistence.Limits or a mapping; got {type(value).__name__}"
        )

    def inflates_too_much(self, uncompressed: int, compressed: int) -> bool:
        """Whether ``compressed`` bytes inflating to ``uncompressed`` exceed ``max_ratio``."""
        return uncompressed > self.ratio_floor_bytes and uncompressed > self.max_ratio * max(compressed, 1)


def size(n: int) -> str:
    """``n`` bytes for a person: ``3.0 GiB``, ``812 bytes``."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
