"""The generated reference pages render as meant: every example is a code block in the built
HTML, and no reStructuredText markup (double backticks, Sphinx roles) is left in the text."""

import functools
import importlib.util
import inspect
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron.plugins import get_registry, hookspecs

ROOT = Path(__file__).resolve().parents[2]
ROLE = re.compile(r":(class|meth|func|data|attr|mod|exc|obj):")


@functools.cache
def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Split(HTMLParser):
    """The text of a page's ``<pre>`` blocks, and the rest of its main text."""

    def __init__(self):
        super().__init__()
        self.blocks, self.prose, self.depth = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            self.depth += 1
            self.blocks.append("")

    def handle_endtag(self, tag):
        if tag == "pre":
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.blocks[-1] += data
        else:
            self.prose.append(data)


def examples(doc):
    """The literal blocks of a docstring, as their lines with the indentation removed."""
    found, block = [], None
    for line in inspect.cleandoc(doc).splitlines():
        if block is not None:
            if line.startswith("    ") or not line.strip():
                block.append(line[4:])
                continue
            found.append("\n".join(block).strip())
            block = None
        if line.rstrip().endswith("::"):
            block = []
    if block is not None:
        found.append("\n".join(block).strip())
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def documented():
    registry = get_registry()
    for kind, page in (("layer", "layers"), ("metric", "metrics"), ("source", "sources")):
        for entry in registry.entries(kind):
            yield page, entry.name, entry.resolve().__doc__ or ""
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(function, "megatron_spec"):
            yield "hooks", name, function.__doc__ or ""


def test_every_example_is_a_code_block_and_no_markup_is_left(site):
    parsed = {}
    checked = 0
    for page, name, doc in documented():
        if page not in parsed:
            parser = Split()
            parser.feed((site / "reference" / page / "index.html").read_text())
            parsed[page] = parser
        parser = parsed[page]
        for example in examples(doc):
            checked += 1
            assert any(example in block for block in parser.blocks), f"{page}: the example of {name}"
    assert checked >= 40
    for page, parser in parsed.items():
        text = "".join(parser.prose)
        assert "``" not in text, page
        assert not ROLE.search(text), f"{page}: {ROLE.search(text).group()}"


def test_the_check_notices_what_the_old_generator_wrote():
    generator = load_generator()
    old = "**Example**\n\n``py\n\ntotal = Add()([price, tax], 'total')\n``\n"
    with pytest.raises(generator.RenderError, match="markup left in the text"):
        generator.check_rendering("layers.md", old)
    with pytest.raises(generator.RenderError, match="never closed"):
        generator.check_rendering("layers.md", "```py\ncode\n")
    with pytest.raises(generator.RenderError, match="markup left"):
        generator.check_rendering("metrics.md", "Override :meth:`update` instead.")


WORD = st.text(st.sampled_from("abcdefxyz_"), min_size=1, max_size=6)
PROSE = st.lists(
    WORD
    | WORD.map(lambda w: f"``{w}``")
    | st.builds(
        lambda role, tilde, w: f":{role}:`{tilde}mod.{w}`",
        st.sampled_from(["class", "meth", "func"]),
        st.sampled_from(["", "~"]),
        WORD,
    ),
    min_size=1,
    max_size=6,
).map(" ".join)
CODE = st.lists(
    st.text(st.sampled_from("abc =()[]'`,.#+"), min_size=1, max_size=12).filter(
        lambda s: s.strip() and not s.startswith("`")
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def docstrings(draw):
    """Docstrings mixing prose with inline markup and literal blocks (``Example::`` or a
    paragraph ending in ``::``) whose code may hold backticks of its own."""
    parts, blocks = [], []
    for _ in range(draw(st.integers(1, 4))):
        parts.append(draw(PROSE))
        if draw(st.booleans()):
            code = draw(CODE)
            parts[-1] = parts[-1] + "::" if draw(st.booleans()) else parts[-1] + "\n\nExample::"
            parts.append("\n".join("    " + line for line in code))
            blocks.append("\n".join(code))
    return "\n\n".join(parts), blocks


@settings(max_examples=100, deadline=None, database=None)
@given(docstrings())
def test_markdown_keeps_every_block_verbatim_and_converts_the_prose(generated):
    generator = load_generator()
    doc, blocks = generated
    markdown = generator._as_markdown(doc)
    generator.check_rendering("generated.md", markdown)
    fenced = re.findall(r"^```py\n(.*?)\n```$", markdown, re.S | re.M)
    assert fenced == blocks
