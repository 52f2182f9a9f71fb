"""What to install when no loaded plugin provides what was asked for: a name, a command, a
hook's answer or an adapter for an object. Every hint is read from the catalogue
(:mod:`megatron.plugins.catalogue`); nothing here knows a plugin by name."""

from __future__ import annotations

import importlib.util
from collections.abc import Collection
from typing import Any

from megatron.dependencies import install_hint
from megatron.errors import MissingDependencyError
from megatron.plugins.catalogue import KNOWN, KnownDistribution
from megatron.plugins.registry import canonical_name


def missing_name(kind: str, name: str, loaded: Collection[str] = ()) -> MissingDependencyError | None:
    """The error for ``name`` of ``kind`` (a layer, a storage scheme, a command) when a catalogued
    distribution provides it and is not among the ``loaded`` distributions; else None."""
    for known in _not_loaded(loaded):
        if name in known.provides.get(kind, ()):
            return missing_distribution(f"The {kind} {name!r}", known)
    return None


def missing_hook(
    hook: str, feature: str, loaded: Collection[str] = (), alternative: str = ""
) -> MissingDependencyError | None:
    """The error for ``feature``, which a catalogued distribution that is not loaded answers
    through ``hook`` (``default_storage_url``); else None."""
    for known in _not_loaded(loaded):
        if hook in known.hooks:
            return missing_distribution(feature, known, alternative)
    return None


def missing_adapter(
    hook: str, obj: Any, feature: str, loaded: Collection[str] = ()
) -> MissingDependencyError | None:
    """The error for ``feature`` on ``obj`` when a catalogued distribution that is not loaded
    claims objects of its library through the adapter ``hook``; else None."""
    top = type(obj).__module__.partition(".")[0]
    for known in _not_loaded(loaded):
        if top in known.adapts.get(hook, ()):
            return missing_distribution(feature, known)
    return None


def install_sentence(known: KnownDistribution) -> str:
    """A sentence saying how to install ``known``."""
    return install_hint(known.name) if known.from_repository else f"Install it: pip install {known.name}"


def missing_distribution(
    feature: str, known: KnownDistribution, alternative: str = ""
) -> MissingDependencyError:
    """The error for ``feature``, which ``known`` provides and which is not loaded: not installed,
    or installed but left out or broken. ``alternative`` is a sentence appended (what else to do)."""
    tail = f" {alternative}" if alternative else ""
    if _installed(known.module):
        return MissingDependencyError(
            f"{feature} comes from {known.name}, which is installed but whose plugin is not loaded: "
            "check MEGATRON_PLUGINS and MEGATRON_DISABLE_PLUGINS, and the warning that says why it "
            f"failed to load.{tail}",
            name=known.module,
        )
    return MissingDependencyError(
        f"{feature} comes from {known.name}, which is not installed. {install_sentence(known)}{tail}",
        name=known.module,
    )


def _not_loaded(loaded: Collection[str]) -> list[KnownDistribution]:
    names = {canonical_name(name) for name in loaded}
    return [known for known in KNOWN if canonical_name(known.name) not in names]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
