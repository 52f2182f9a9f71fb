"""Generate the reference pages from what is installed: every registered layer, metric and
source from the plugin registry, and every hook from the hookspecs.

    python docs/gen_reference.py           # rewrite docs/reference/*.md
    python docs/gen_reference.py --check   # fail if they are out of date (CI and tests)
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from megatron.plugins import get_registry, hookspecs

REFERENCE = Path(__file__).resolve().parent / "reference"
KINDS = {
    "layer": ("layers.md", "Layers", "megatron.layers"),
    "metric": ("metrics.md", "Metrics", "megatron.metrics"),
    "source": ("sources.md", "Sources", "megatron.io"),
}


class UndocumentedError(Exception):
    """A registered name or a hook without the documentation a reference page needs."""


def _doc(obj: object, what: str) -> str:
    own = getattr(obj, "__doc__", None)  # its own docstring: a base class's does not count
    doc = inspect.cleandoc(own) if own else ""
    if not doc:
        raise UndocumentedError(f"{what} has no docstring")
    return doc


def _as_markdown(doc: str) -> str:
    """Docstring text as Markdown: ``Example::`` blocks become Python code blocks."""
    out, in_example = [], False
    for line in doc.splitlines():
        if line.strip() == "Example::":
            out += ["**Example**", "", "```py"]
            in_example = True
            continue
        if in_example and line and not line.startswith("    "):
            out += ["```", ""]
            in_example = False
        out.append(line[4:] if in_example else line)
    if in_example:
        out.append("```")
    return "\n".join(out).replace("``", "`")


def kind_page(kind: str) -> str:
    registry = get_registry()
    _, title, module = KINDS[kind]
    lines = [
        f"# {title}",
        "",
        f"Every {kind} installed here, as `{module}.<name>`, by the plugin that registers it.",
        "",
    ]
    for entry in registry.entries(kind):  # type: ignore[arg-type]
        obj = entry.resolve()
        doc = _doc(obj, f"{kind} {entry.name} ({entry.distribution})")
        if kind in ("layer", "metric") and "Example::" not in doc:
            raise UndocumentedError(
                f"{kind} {entry.name} ({entry.distribution}) has no example in its docstring"
            )
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = "(...)"
        lines += [
            f"## {entry.name}",
            "",
            f"`{module}.{entry.name}{signature}`",
            "",
            f"*From {entry.distribution} (plugin `{entry.plugin}`).*",
            "",
            _as_markdown(doc),
            "",
        ]
    return "\n".join(lines)


def hooks_page() -> str:
    lines = ["# Hooks", "", "Every hook a plugin can implement (`megatron.plugins.hookspecs`).", ""]
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(function, "megatron_spec"):
            continue
        lines += [
            f"## {name}",
            "",
            f"`{name}{inspect.signature(function)}`",
            "",
            _as_markdown(_doc(function, f"hook {name}")),
            "",
        ]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    generated = {KINDS[kind][0]: kind_page(kind) for kind in KINDS}
    generated["hooks.md"] = hooks_page()
    return generated


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when a page is out of date")
    args = parser.parse_args()
    stale = []
    for filename, text in pages().items():
        path = REFERENCE / filename
        if args.check:
            if not path.exists() or path.read_text() != text + "\n":
                stale.append(filename)
        else:
            path.write_text(text + "\n")
    if stale:
        print(f"out of date: {stale}: run python docs/gen_reference.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
