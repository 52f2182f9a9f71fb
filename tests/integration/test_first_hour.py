"""What a newcomer meets first: the command line on saved files, the public namespace,
automatic names, hints for misspelt inputs, and a quiet TensorFlow."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from importlib.metadata import version

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron.errors import MissingInputError
from megatron.graph.names import snake_case as _snake_case


def run(*args: str, cwd: object = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "megatron", *args], capture_output=True, text=True, cwd=cwd)


def user_function(v):
    return v * 3


@pytest.fixture
def saved_with_user_code(tmp_path):
    class Halve(megatron.layers.StatelessLayer):
        def transform(self, x):
            return x / 2

    x = megatron.nodes.Input("x", (2,))
    scaled = megatron.layers.Whiten()(x, "scaled")
    tripled = megatron.layers.Lambda(user_function)(scaled, "tripled")
    halved = Halve()(tripled, "halved")
    pipeline = megatron.Pipeline(x, [scaled, halved], name="user_code", version="1")
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2)})
    return pipeline, pipeline.save(tmp_path)


def test_summary_and_plot_of_a_file_need_no_user_code(saved_with_user_code, tmp_path):
    pipeline, path = saved_with_user_code
    summary = run("summary", str(path))
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout == pipeline.summary_text() + "\n"  # the same table, no custom_objects
    assert "Lambda(function=user_function" in summary.stdout and "Halve()" in summary.stdout
    pytest.importorskip("pydot", reason="needs pydot: pip install -e 'packages/megatron-core[viz]'")
    dot = tmp_path / "graph.dot"
    plotted = run("plot", str(path), "-o", str(dot))
    assert plotted.returncode == 0, plotted.stderr
    assert dot.read_text() == pipeline.to_dot() + ("\n" if not pipeline.to_dot().endswith("\n") else "")
    audit = run("audit", str(path))  # what loading would need: the user's code
    assert "user_function" in audit.stdout and "Halve" in audit.stdout


def test_summary_of_a_keras_pipeline_file_imports_no_tensorflow(tmp_path):
    pytest.importorskip(
        "megatron_keras", reason="needs megatron_keras: pip install -e packages/megatron-keras"
    )
    from megatron_keras.demo import build_pipeline

    path = build_pipeline(storage=None).save(tmp_path)
    code = textwrap.dedent(f"""
        import sys
        from megatron.cli import main
        assert main(["summary", {str(path)!r}]) == 0
        heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
        assert not heavy, heavy
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "preds [output]" in result.stdout and "Keras(model=<keras artifact>" in result.stdout
    # the specs of built-in layers are inferred from the file
    assert re.search(
        r"rgb_to_grey\S* +RGBtoGrey\(method='luminosity', keep_dim=True\) +\(48, 48, 1\) \?", result.stdout
    )  # specs of built-in layers are inferred from the file


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"megatron {version('megatron-core')}"


def test_the_public_namespace_is_the_public_api():
    assert dir(megatron) == sorted(megatron.__all__)
    for name in megatron.__all__:
        getattr(megatron, name)
    for private in ("Any", "Mapping", "PathLike", "logging", "TYPE_CHECKING"):
        assert not hasattr(megatron, private)


def test_automatic_node_names_keep_acronyms_whole():
    images = megatron.nodes.Input("image", (4, 4, 3))
    grey = megatron.layers.RGBtoGrey()(images)
    assert re.fullmatch(r"rgb_to_grey(_\d+)?/0", grey.name), grey.name
    expected = {"OneHotRange": "one_hot_range", "HTMLParser": "html_parser", "XMLtoJSON": "xml_to_json"}
    assert {name: _snake_case(name) for name in expected} == expected


LOWER = "abcdefghijklmnopqrstuvwxyz"
WORD = st.builds(
    lambda head, tail: head + tail, st.sampled_from(LOWER.upper()), st.text(LOWER, min_size=1, max_size=5)
)
ACRONYM = st.text(LOWER.upper(), min_size=2, max_size=4)
SMALL_WORDS = ["to", "of", "and", "or", "by", "per", "from"]
SMALL = st.sampled_from(SMALL_WORDS)


@st.composite
def class_names(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A class name made of words (``Grey``), acronyms (``RGB``) and, after an acronym, small
    words (``to``), with the words it is made of."""
    parts: list[str] = []
    previous = None
    for _ in range(draw(st.integers(1, 4))):
        choices = ["word"] + (["acronym"] if previous != "acronym" else ["small"])
        kind = draw(st.sampled_from(choices))
        word = WORD
        if previous == "acronym":  # "AAAor" reads as AAA + or: a word after an acronym is no small word
            word = WORD.filter(lambda w: w[1:] not in SMALL_WORDS)
        parts.append(draw({"word": word, "acronym": ACRONYM, "small": SMALL}[kind]))
        previous = kind
    return "".join(parts), [part.lower() for part in parts]


@settings(max_examples=300, deadline=None)
@given(class_names())
def test_snake_case_splits_words_and_keeps_acronyms_whole(case):
    name, words = case
    assert _snake_case(name) == "_".join(words)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="ascii", categories=("L", "N")) | st.just("_"), min_size=1, max_size=12))
def test_snake_case_keeps_every_character(name):
    snake = _snake_case(name)
    assert snake.replace("_", "") == name.lower().replace("_", "")
    assert _snake_case(snake) == snake  # names already in snake case stay as they are


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.text("abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=10), min_size=1, max_size=3, unique=True
    ),
    st.data(),
)
def test_a_misspelt_key_is_named_as_a_typo_of_the_expected_input(names, data):
    inputs = [megatron.nodes.Input(name) for name in names]
    outputs = [megatron.layers.Lambda(lambda v: v)(i, f"out_{i.name}") for i in inputs]
    pipeline = megatron.Pipeline(inputs, outputs, name="typo")
    wanted = data.draw(st.sampled_from(names))
    cut = data.draw(st.integers(0, len(wanted) - 1))
    typo = wanted[:cut] + wanted[cut + 1 :]  # one letter dropped
    given_keys = {(typo if n == wanted else n): np.zeros(2) for n in names}
    if typo in names:
        return
    with pytest.raises(MissingInputError) as caught:
        pipeline.transform(given_keys)
    message = str(caught.value)
    assert f"needs input {wanted!r}" in message
    assert f"Did you mean {wanted!r} for the given key {typo!r}?" in message


def test_tensorflow_start_up_lines_are_filtered_and_errors_kept():
    from importlib.util import find_spec

    if find_spec("megatron_keras") is None:
        pytest.skip("needs megatron_keras: pip install -e packages/megatron-keras")
    from megatron_keras.quiet import kept

    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796164371.432802   17156 port.cc:153] oneDNN custom operations are on.\n"
        "W0000 00:00:1796164371.432802   17156 x.cc:1] a warning\n"
        "E0000 00:00:1796164371.432802   17156 x.cc:2] an error\n"
        "a Python warning\n"
    )
    assert kept(text, 2) == "E0000 00:00:1796164371.432802   17156 x.cc:2] an error\na Python warning\n"
    assert kept(text, 0) == text
    imported = subprocess.run(
        [sys.executable, "-c", "from megatron_keras.quiet import import_keras; import_keras()"],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0 and "oneDNN" not in imported.stderr and "absl" not in imported.stderr
