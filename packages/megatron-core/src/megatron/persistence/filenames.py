"""The file name a pipeline is saved under: readable, bounded and different for every
(name, version).

An ordinary pair keeps the seed's form, ``{name}-{version}.megatron`` (``seed-0.1.megatron``),
or ``{name}.megatron`` without a version. Such a name reads back unambiguously: without a
dash there is no version, and otherwise the version is what follows the last dash. Every other
pair (a character outside letters, digits and ``_.+=,@``, a dash that would make the reading
ambiguous, a leading dot or dash, more than 200 bytes) is written as a cleaned-up, shortened
prefix followed by ``~`` and a hash of the exact pair: ``a_b~3f2c9d0a41be7c55e01d.megatron``.
``~`` never appears in an ordinary name, so the two forms cannot collide. No name starts with
a dot (a hidden file), a dash (read as an option by command-line tools) or ``~``.
"""

from __future__ import annotations

import hashlib
import json
import re

from megatron.persistence.archive import EXTENSION

_PLAIN = re.compile(r"[A-Za-z0-9_.+=,@]+")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.+=,@-]+")
_MAX_PLAIN = 200  # bytes; with the extension and a temporary suffix, well under 255
_PREFIX = 100


def file_name(name: str, version: str | None) -> str:
    """The file name of the pipeline ``name`` at ``version`` (see the module docstring)."""
    if version is None:
        stem = name if _PLAIN.fullmatch(name) else None
    else:
        stem = f"{name}-{version}" if _PLAIN_NAME.fullmatch(name) and _PLAIN.fullmatch(version) else None
    if stem is not None and not stem.startswith((".", "-")) and len(stem) <= _MAX_PLAIN:
        return stem + EXTENSION
    exact = json.dumps([name, version], ensure_ascii=True).encode()
    digest = hashlib.sha256(exact).hexdigest()[:20]
    readable = name if version is None else f"{name}-{version}"
    prefix = re.sub(r"[^A-Za-z0-9_.+=,@-]", "_", readable)[:_PREFIX].lstrip(".-")
    return f"{prefix or '_'}~{digest}{EXTENSION}"
