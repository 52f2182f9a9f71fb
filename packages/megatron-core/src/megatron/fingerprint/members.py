"""How a walk reads a class: one of an installed library by name and version; one of your own
by every member of each class along its bases (methods, properties, class attributes)."""

from __future__ import annotations

from megatron.fingerprint.digest import Digest
from megatron.fingerprint.libraries import library_object
from megatron.fingerprint.probes import has_length

_CLASS_NOISE = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__qualname__",
        "__doc__",
        "__annotations__",
        "__slotnames__",  # written by copyreg on first pickling
        "__firstlineno__",  # where the class is written, not what it computes
        "__static_attributes__",
        "_abc_impl",  # the abc module's per-process caches
        "__orig_bases__",  # typing's generic aliases
        "__parameters__",
    }
)


class ClassWalk(Digest):
    """The part of a walk that reads classes."""

    def klass(self, cls: type) -> None:
        """A class: an installed library's by name and version; one of your own by its members
        (walked apart, so that what they read does not count against an object's budget)."""
        name = library_object(cls)
        if name is not None:
            self.put("class", name)
            return
        if not self._track(cls):
            return
        child = self._child(limit=None, strict=False)
        child.members(cls)
        self._adopt(child, counted=False)

    def members(self, cls: type) -> None:
        """Along the bases of a class of your own, every member of each class's namespace."""
        self.put("class", f"{cls.__module__}:{cls.__qualname__}")
        for klass in cls.__mro__:
            name = library_object(klass)
            if name is not None:
                self.put("base", name)
                continue
            self.put("base", f"{klass.__module__}:{klass.__qualname__}")
            namespace = klass.__dict__
            if self.probes is not None:
                self.probes.append((has_length, (namespace, len(namespace)), True))
            get = namespace.__getitem__
            for member in sorted(namespace):
                if member not in _CLASS_NOISE:
                    self.put("member", member)
                    self.slot(get, member, namespace[member])
