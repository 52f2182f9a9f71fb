"""Layer names within one connected graph: automatic names, numbering, and joins."""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from megatron.graph.node import Node
    from megatron.layers.base import Layer

_SMALL_WORD = r"(?:to|of|and|or|by|per|from)(?:[A-Z0-9_]|$)"
_WORD_BOUNDARY = re.compile(
    r"(?<=[a-z0-9])(?=[A-Z])"  # a capital after a lower-case letter or digit: One|Hot
    rf"|(?<=[A-Z])(?=[A-Z](?!{_SMALL_WORD})[a-z])"  # an acronym before a word: HTML|Parser
    rf"|(?<=[A-Z]{{2}})(?={_SMALL_WORD})"  # an acronym before a small word: RGB|to|Grey
)


def snake_case(name: str) -> str:
    """A class name in snake case, acronyms kept whole: ``RGBtoGrey`` -> ``rgb_to_grey``."""
    return _WORD_BOUNDARY.sub("_", name).lower()


def automatic_name(cls: type) -> str:
    """The name a layer (or metric) of class ``cls`` gets when none is given, before numbering."""
    return snake_case(cls.__name__)


class Names:
    """The layer names taken in one connected graph.

    Automatic layer names (``whiten``, ``whiten_1``) are unique within a graph, not within the
    process: building the same graph twice gives the same names, which scikit-learn's nested
    parameters (``whiten__...``) and saved files rely on. Every :class:`~megatron.nodes.Input`
    starts a graph; a layer called on nodes of several graphs joins them (a union-find of these
    records), and an automatic name that the join makes ambiguous is renamed, with its unnamed
    nodes, to the next free number, as if the graphs had been built as one.
    """

    __slots__ = ("layers", "parent")

    def __init__(self) -> None:
        self.parent: Names | None = None
        # weak: a graph's names do not keep its layers alive (an Input reused for many graphs)
        self.layers: weakref.WeakValueDictionary[str, Layer] = weakref.WeakValueDictionary()

    def __getstate__(self) -> tuple[Names | None, dict[str, Layer]]:
        return self.parent, dict(self.layers)

    def __setstate__(self, state: tuple[Names | None, dict[str, Layer]]) -> None:
        self.parent, layers = state
        self.layers = weakref.WeakValueDictionary(layers)

    def root(self) -> Names:
        """The record that holds the names of the whole (joined) graph."""
        root = self
        while root.parent is not None:
            root = root.parent
        walker = self
        while walker.parent is not None and walker.parent is not root:  # shorten the path walked
            walker.parent, walker = root, walker.parent
        return root

    def free(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``... whichever no layer of the graph holds."""
        name, n = base, 0
        while name in self.layers:
            n += 1
            name = f"{base}_{n}"
        return name


def join_graphs(nodes: Sequence[Node]) -> Names:
    """The names of the graph that joining ``nodes`` makes (one record for all of them)."""
    root = nodes[0].graph.root()
    for node in nodes[1:]:
        other = node.graph.root()
        if other is not root:
            _merge(root, other)
    for node in nodes:
        node.graph = root
    return root


def _merge(root: Names, other: Names) -> None:
    other.parent = root
    for name, layer in list(other.layers.items()):
        resident = root.layers.get(name)
        if resident is None or resident is layer:
            root.layers[name] = layer
            continue
        # the same automatic name in both graphs: the one that joins takes the next number
        mover = layer if layer.auto_named else resident
        if not mover.auto_named:
            continue  # two layers named so by the user: the pipeline reports their nodes
        keeper = resident if mover is layer else layer
        root.layers[name] = keeper
        mover.rename(root.free(automatic_name(type(mover))), root)
    other.layers = weakref.WeakValueDictionary()
