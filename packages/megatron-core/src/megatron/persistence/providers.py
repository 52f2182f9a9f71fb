"""Who provides what a pipeline file names: the plugin and distribution (with its version) of
each registered class and artifact reader, and the distribution of each function.

Saving records them (file format 2), so that loading resolves a name that two installed
plugins register by the one the file was saved with, and warns with a
:class:`ProviderChangedWarning` when what is installed is another version (or, with no
choice left, another distribution). Files of format 1 record bare names: they resolve as
before, and a name two plugins register needs ``custom_objects`` or one plugin disabled.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import attrs

from megatron.errors import PersistenceError
from megatron.persistence.schema_values import tagged_values
from megatron.plugins.registry import Entry, Kind, canonical_name


class ProviderChangedWarning(UserWarning):
    """A pipeline file was saved with another version of a plugin or library (or another
    plugin) than the one that now provides a class, function or artifact reader it names."""


@attrs.frozen
class Recorded:
    """What a file records about a registered name: the plugin, distribution and version."""

    plugin: str
    distribution: str
    version: str

    @classmethod
    def of(cls, entry: Entry) -> Recorded:
        return cls(entry.plugin, entry.distribution, entry.version)

    def as_json(self) -> dict[str, str]:
        return {"name": self.plugin, "distribution": self.distribution, "version": self.version}

    @classmethod
    def from_json(cls, value: Mapping[str, str] | None) -> Recorded | None:
        return None if value is None else cls(value["name"], value["distribution"], value["version"])

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} from {self.distribution} {self.version}".rstrip()

    def same_distribution(self, entry: Entry) -> bool:
        return canonical_name(self.distribution) == canonical_name(entry.distribution)


def record_entry(entry: Entry | None) -> dict[str, str] | None:
    """The ``plugin`` field of a description for a registered ``entry`` (``None``: not registered)."""
    return None if entry is None else Recorded.of(entry).as_json()


def choose(
    kind: Kind, name: str, recorded: Recorded | None, candidates: list[Entry], where: str
) -> Entry | None:
    """The entry among ``candidates`` (every plugin registering ``name``) that the file means:
    the one of the recorded plugin and distribution. ``None`` when no plugin registers the
    name. A different version, or with a single candidate another distribution, is loaded
    with a warning; several candidates, none recorded, are refused."""
    if not candidates:
        return None
    if recorded is None:  # a file of format 1: the bare name
        if len(candidates) == 1:
            return candidates[0]
        raise PersistenceError(
            f"{where} names the {kind} {name!r}, which {_owners(candidates)} all register, and the file "
            f"(an older format) does not say which it was saved with: pass the class as "
            f"load_pipeline(..., custom_objects={{{name!r}: ...}}), or block the others with "
            f"MEGATRON_DISABLE_PLUGINS"
        )
    same = [e for e in candidates if recorded.same_distribution(e)]
    chosen = next((e for e in same if e.plugin == recorded.plugin), same[0] if same else None)
    if chosen is not None:
        if chosen.version != recorded.version:
            warnings.warn(
                ProviderChangedWarning(
                    f"{where}: the {kind} {name!r} was saved with {recorded}; {chosen.distribution} "
                    f"{chosen.version} is installed and provides it now"
                ),
                stacklevel=3,
            )
        return chosen
    if len(candidates) == 1:
        (chosen,) = candidates
        warnings.warn(
            ProviderChangedWarning(
                f"{where}: the {kind} {name!r} was saved with {recorded}, which is not installed; the one "
                f"{chosen.distribution} {chosen.version} registers (plugin {chosen.plugin!r}) is loaded instead"
            ),
            stacklevel=3,
        )
        return chosen
    raise PersistenceError(
        f"{where} names the {kind} {name!r}, saved with {recorded}, which is not installed; "
        f"{_owners(candidates)} register that name: install {recorded.distribution}, or pass the class "
        f"as load_pipeline(..., custom_objects={{{name!r}: ...}})"
    )


def _owners(entries: list[Entry]) -> str:
    return " and ".join(
        f"{e.distribution} {e.version} (plugin {e.plugin!r})".replace("  ", " ") for e in entries
    )


# -- functions ---------------------------------------------------------------------------------


@functools.cache
def _distributions_of_modules() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def _installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def function_distribution(function: Any) -> dict[str, str] | None:
    """The distribution (name and version) that ships ``function``'s module, or ``None`` for a
    function of the standard library or of code that no installed distribution ships."""
    module = getattr(function, "__module__", None) or ""
    top = module.partition(".")[0]
    if not top or top == "__main__" or top in sys.stdlib_module_names or top == "builtins":
        return None
    names = _distributions_of_modules().get(top)
    if not names:
        return None
    version = _installed_version(names[0])
    return None if version is None else {"name": names[0], "version": version}


def check_functions(recorded: Mapping[str, dict[str, str]], bound: Mapping[str, Any], where: str) -> None:
    """Warn for each bound function whose distribution is installed at another version than
    the one the file records for it (``recorded`` and ``bound`` by the function's record)."""
    for text, saved in recorded.items():
        function = bound.get(text)
        now = None if function is None else function_distribution(function)
        if now is None or canonical_name(now["name"]) != canonical_name(saved["name"]):
            continue
        if now["version"] != saved["version"]:
            qualname = text.partition(":")[2].partition("@")[0]
            warnings.warn(
                ProviderChangedWarning(
                    f"{where}: the function {qualname!r} was saved with {saved['name']} {saved['version']}; "
                    f"{now['name']} {now['version']} is installed and provides it now"
                ),
                stacklevel=3,
            )


def recorded_functions(value: Any) -> dict[str, dict[str, str]]:
    """The distributions recorded for the functions in an encoded value, by function record."""
    return {
        item["__function__"]: item["distribution"]
        for item in tagged_values(value)
        if "__function__" in item and item.get("distribution") is not None
    }
