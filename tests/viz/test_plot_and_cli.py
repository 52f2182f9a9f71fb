"""Drawing pipelines with pydot and Graphviz, notebook display, and the megatron command."""

import subprocess
import sys

import numpy as np
import pytest

import megatron

pydot = pytest.importorskip("pydot", reason="needs pydot: pip install -e 'packages/megatron-core[viz]'")


@pytest.fixture
def tutorial():
    pytest.importorskip(
        "megatron_keras", reason="needs megatron_keras: pip install -e packages/megatron-keras"
    )  # the tutorial's model is a Keras CNN
    from megatron_keras.demo import build_pipeline, make_data

    pipeline = build_pipeline(storage=None)
    pipeline.fit(make_data(50), progress=False)
    return pipeline


def test_tutorial_renders_to_png_and_svg(tutorial, tmp_path, graphviz):
    png = tutorial.plot(tmp_path / "pipeline.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    svg = megatron.plot(tutorial, tmp_path / "pipeline.svg")
    assert b"<svg" in svg.read_bytes()[:500]
    assert "image/svg+xml" in tutorial._repr_mimebundle_()  # notebooks show the graph inline


def test_dot_has_one_node_per_graph_node_with_labels_and_edges(tutorial):
    (graph,) = pydot.graph_from_dot_data(tutorial.to_dot())
    nodes = {n.get_name(): n.get("label") for n in graph.get_nodes() if n.get_name() not in ("node", "graph")}
    expected = [n.name for n in tutorial.nodes if not n.name.endswith(":positions")] + ["model_acc"]
    assert len(nodes) == len(expected)
    labels = " ".join(nodes.values())
    for name in expected:
        assert f"<b>{name}</b>" in labels
    assert "RGBtoGrey" in labels and "Keras" in labels and "(48, 48, 3)" in labels
    names = {label.split("<b>")[1].split("</b>")[0]: node_id for node_id, label in nodes.items()}
    edges = {(e.get_source(), e.get_destination()) for e in graph.get_edges()}
    assert (names["image"], names[tutorial.nodes[2].name]) in edges  # image -> grey
    assert (names["preds"], names["model_acc"]) in edges  # the metric reads the predictions


def test_missing_graphviz_says_how_to_install_it(tutorial, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' program to be found
    with pytest.raises(megatron.MegatronError, match="install Graphviz"):
        tutorial.plot(tmp_path / "p.png")
    assert tutorial.to_dot().startswith("digraph")  # the DOT text needs no Graphviz
    assert tutorial._repr_mimebundle_() == {"text/plain": repr(tutorial)}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "megatron", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def saved(tmp_path):
    x, y = megatron.nodes.Input("x", (2,)), megatron.nodes.Input("y")
    scaled = megatron.layers.Whiten()(x, "scaled")
    total = megatron.layers.Lambda(np.sum)(scaled, "total")
    # the metric reads a node off the path to the outputs: it is attached with metrics=
    acc = megatron.metrics.Accuracy()([y, megatron.layers.OneHotRange(0, 1)(y)], "acc")
    pipeline = megatron.Pipeline([x, y], [scaled, total], name="cli", version="1", metrics=[acc])
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2), "y": np.array([0, 1, 0, 1])})
    return pipeline.save(tmp_path)


def test_cli_summary_plot_and_audit_on_a_saved_pipeline(saved, tmp_path, graphviz):
    summary = run("summary", str(saved))
    assert (
        summary.returncode == 0 and "scaled [output]" in summary.stdout and "acc [metric]" in summary.stdout
    )
    image = tmp_path / "graph.svg"
    plotted = run("plot", str(saved), "-o", str(image), "--rankdir", "LR")
    assert plotted.returncode == 0 and b"<svg" in image.read_bytes()[:500]
    audit = run("audit", str(saved))
    assert "layer Whiten (registered by megatron-core)" in audit.stdout
    assert "function numpy:sum" in audit.stdout
    missing = run("summary", str(tmp_path / "nope.megatron"))
    assert missing.returncode == 1 and "No pipeline file" in missing.stderr


def test_cli_help_and_demo(tmp_path):
    pytest.importorskip(
        "megatron_keras", reason="needs megatron_keras: pip install -e packages/megatron-keras"
    )
    pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")
    for command in ("plugins", "summary", "plot", "audit", "demo"):
        result = run(command, "--help")
        assert result.returncode == 0 and "usage: megatron" in result.stdout
    demo = run("demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "outputs[0].shape     (1000, 2)" in demo.stdout
    assert str(tmp_path / "megatron.db") in demo.stdout  # says where the outputs went
    assert "held-out" in demo.stdout and "synthetic" in demo.stdout  # and what the accuracy measures
    assert "oneDNN" not in demo.stderr and "absl" not in demo.stderr  # TensorFlow's start-up lines
    assert (tmp_path / "pipelines" / "getting_started-0.1.megatron").exists()
