"""Code of installed libraries, the standard library and megatron itself: known by qualified
name and the version of what defines it, not by its content."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

_PYTHON = "python-" + ".".join(map(str, sys.version_info[:3]))
_OWN_PACKAGE = __name__.partition(".")[0]  # megatron: by its version, from a source checkout too


@functools.cache
def _library_roots() -> tuple[tuple[str, bool], ...]:
    """Folders of installed code: site-packages first (inside the standard library's folder in
    some layouts), then the standard library; each with whether it is the standard library."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    sites = {paths.get("purelib"), paths.get("platlib")}
    try:
        sites.update(site.getsitepackages())
        sites.add(site.getusersitepackages())
    except AttributeError:  # an old virtualenv's site module
        pass
    standard = {paths.get("stdlib"), paths.get("platstdlib")}
    roots = [(path, False) for path in sites if path] + [(path, True) for path in standard if path]
    return tuple((os.path.join(os.path.realpath(path), ""), is_standard) for path, is_standard in roots)


_versions: dict[str | None, str | None] = {}


def library_version(module: str | None) -> str | None:
    """The version of the installed library (or standard library, or megatron) that defines
    ``module``, or None where it is code of your own."""
    try:
        return _versions[module]
    except KeyError:
        pass
    version = _versions[module] = _find_library_version(module)
    return version


def _find_library_version(name: str | None) -> str | None:
    if not name or name == "__main__":
        return None
    if name == "builtins" or name in sys.builtin_module_names:
        return _PYTHON
    top = name.partition(".")[0]
    if top == _OWN_PACKAGE:  # megatron itself, from a source checkout too
        return _distribution_version(top)
    module = sys.modules.get(name) or sys.modules.get(top)
    if module is None:
        return None  # not imported: code made up at run time
    path = getattr(module, "__file__", None)
    if path is None:
        spec = getattr(module, "__spec__", None)
        return _PYTHON if spec is not None and spec.origin in ("frozen", "built-in") else None
    real = os.path.realpath(path)
    for root, is_standard in _library_roots():
        if real.startswith(root):
            return _PYTHON if is_standard else _distribution_version(top)
    return None


def _distribution_version(top: str) -> str:
    version = getattr(sys.modules.get(top), "__version__", None)
    if isinstance(version, str):
        return f"{top}-{version}"
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    found = []
    for name in _packages().get(top, [top]):
        try:
            found.append(f"{name}-{installed(name)}")
        except PackageNotFoundError:
            found.append(name)
    return ",".join(found)


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def library_name(module: str, qualname: str) -> str:
    return f"{module}:{qualname}={library_version(module) or ''}"


def library_object(obj: Any) -> str | None:
    """``module:qualname=version`` for a function or class of an installed library that its
    module holds under that name; None for anything else, such as code of your own or a
    closure a library function made (its captured values count)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str) or "<" in qualname or library_version(module) is None:
        return None
    found: Any = sys.modules.get(module)  # type: ignore[arg-type]
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return library_name(module, qualname) if found is obj else None  # type: ignore[arg-type]
