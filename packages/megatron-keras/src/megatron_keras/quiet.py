"""Importing Keras without TensorFlow's native start-up log lines.

TensorFlow's C++ libraries log through absl before absl is set up, straight to the process's
standard error, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach the lines written while they load
(the oneDNN notice, printed once per library). :func:`import_keras` captures standard error at
the file-descriptor level while Keras and TensorFlow are first imported, and writes back every
line except absl's lines below ``TF_CPP_MIN_LOG_LEVEL`` (default 2: info and warnings dropped,
errors kept).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def min_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` (set to 2 when unset), as TensorFlow reads it."""
    value = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return int(value) if value.strip().isdigit() else 0


def kept(text: str, level: int) -> str:
    """``text`` without absl's log lines below ``level`` (and its preamble when any is dropped)."""
    lines = []
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match is not None and _SEVERITY[match.group(1)] < level:
            continue
        if line.startswith(_PREAMBLE) and level > 0:
            continue
        lines.append(line)
    return "".join(lines)


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Filter what native code writes to standard error inside the block (see the module)."""
    level = min_log_level()
    try:
        stderr_fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
    except (AttributeError, OSError, ValueError):  # no real file descriptor: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        for stream in (s for s in (sys.stderr, sys.__stderr__) if s is not None):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = os.dup(stderr_fd)
        os.dup2(capture.fileno(), stderr_fd)
        try:
            yield
        finally:
            for stream in (s for s in (sys.stderr, sys.__stderr__) if s is not None):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            capture.seek(0)
            rest = kept(capture.read().decode(errors="replace"), level)
            if rest:
                os.write(stderr_fd, rest.encode())


def import_keras() -> ModuleType:
    """The ``keras`` module, imported with TensorFlow's start-up log lines filtered."""
    module = sys.modules.get("keras")
    if module is not None:
        return module
    with native_logs_filtered():
        return importlib.import_module("keras")
