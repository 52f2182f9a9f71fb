"""Generate the reference pages from what is installed: every registered layer, metric and
source from the plugin registry, and every hook from the hookspecs.

    python docs/gen_reference.py           # rewrite docs/reference/*.md
    python docs/gen_reference.py --check   # fail if they are out of date (CI and tests)
"""

from __future__ import annotations

import argparse
import inspect
import re
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


class RenderError(Exception):
    """A generated page that Markdown would not render as meant."""


def _doc(obj: object, what: str) -> str:
    own = getattr(obj, "__doc__", None)  # its own docstring: a base class's does not count
    doc = inspect.cleandoc(own) if own else ""
    if not doc:
        raise UndocumentedError(f"{what} has no docstring")
    return doc


_ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj|const|ref):`(~?)([^`]+)`")


def _inline(text: str) -> str:
    """reStructuredText inline markup as Markdown: ``literal`` and Sphinx roles become code."""

    def role(match: re.Match[str]) -> str:
        target = match.group(2)
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return _ROLE.sub(role, text).replace("``", "`")


def _as_markdown(doc: str) -> str:
    """Docstring text as Markdown. ``Example::`` and any paragraph ending in ``::`` introduce
    an indented literal block, which becomes a fenced Python block; inline markup outside
    those blocks becomes Markdown code spans, and the blocks are kept as written."""
    out: list[str] = []
    in_block = False
    for line in doc.splitlines():
        if in_block:
            if not line.strip():
                out.append("")
                continue
            if line.startswith("    "):
                out.append(line[4:])
                continue
            while out and not out[-1]:
                out.pop()
            out += ["```", ""]
            in_block = False
        if line.strip() == "Example::":
            out += ["**Example**", "", "```py"]
            in_block = True
        elif line.rstrip().endswith("::"):
            text = line.rstrip()[:-2].rstrip()
            out += [_inline(text) + ":" if text else "", "", "```py"]
            in_block = True
        else:
            out.append(_inline(line))
    if in_block:
        while out and not out[-1]:
            out.pop()
        out.append("```")
    text = "\n".join(out)
    return re.sub(r"```py\n\n+", "```py\n", text)


class _Annotation(str):
    """An annotation kept as text (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def _signature(obj: object) -> str:
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"

    def plain(annotation: object) -> object:
        return _Annotation(annotation) if isinstance(annotation, str) else annotation

    parameters = [p.replace(annotation=plain(p.annotation)) for p in signature.parameters.values()]
    returned = inspect.Signature.empty if isinstance(obj, type) else plain(signature.return_annotation)
    return str(signature.replace(parameters=parameters, return_annotation=returned))


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
        signature = _signature(obj)
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
            f"`{name}{_signature(function)}`",
            "",
            _as_markdown(_doc(function, f"hook {name}")),
            "",
        ]
    return "\n".join(lines)


def check_rendering(filename: str, text: str) -> None:
    """Refuse a page whose code fences do not pair up, or whose prose keeps reStructuredText
    markup (a double backtick, a Sphinx role) that Markdown would show as it is."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if in_fence and line.strip() != "```":
                raise RenderError(f"{filename}:{number}: a code block opens inside another: {line!r}")
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if "``" in line or _ROLE.search(line):
            raise RenderError(f"{filename}:{number}: reStructuredText markup left in the text: {line!r}")
    if in_fence:
        raise RenderError(f"{filename}: a code block is never closed")


def pages() -> dict[str, str]:
    generated = {KINDS[kind][0]: kind_page(kind) for kind in KINDS}
    generated["hooks.md"] = hooks_page()
    for filename, text in generated.items():
        check_rendering(filename, text)
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
