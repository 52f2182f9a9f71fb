"""The summary table and logging."""

import logging
import os
from pathlib import Path

import numpy as np

import megatron
from megatron import layers
from megatron.nodes import Input

SNAPSHOT = Path(__file__).parent / "snapshots" / "summary.txt"


def named(layer, name):
    layer.name = name
    return layer


def build():
    image, label = Input("image", (4, 4, 3)), Input("label")
    grey = named(layers.RGBtoGrey(keep_dim=True), "grey")(image, "grey")
    flat = named(layers.Flatten(), "flatten")(grey, "flat")
    scaled = named(layers.Whiten(), "whiten")(flat, "scaled")
    _low, high = named(layers.Lambda(np.min, n_outputs=2), "split")(scaled, ["low", "high"])
    ohe = named(layers.OneHotRange(max_val=1), "onehot")(label, "ohe")
    megatron.metrics.Accuracy()([ohe, ohe], "acc")
    return megatron.Pipeline([image, label], [scaled, high, ohe], name="summary", version="1")


def test_summary_snapshot():
    pipeline = build()
    pipeline.fit({"image": np.random.default_rng(0).random((10, 4, 4, 3)), "label": np.zeros(10, dtype=int)})
    text = pipeline.summary_text()
    if os.environ.get("MEGATRON_UPDATE_SNAPSHOTS"):  # after a deliberate change: review the diff
        SNAPSHOT.write_text(text + "\n")
    assert text + "\n" == SNAPSHOT.read_text()


def test_summary_prints_like_keras_and_keeps_the_text(capsys):
    pipeline = build()
    assert pipeline.summary() is None
    printed = capsys.readouterr().out
    assert printed == pipeline.summary_text() + "\n"
    lines = []
    pipeline.summary(print_fn=lines.append)
    assert lines == [pipeline.summary_text()] and capsys.readouterr().out == ""


def test_a_saved_file_summarises_as_the_pipeline_does_without_its_functions(tmp_path):
    from megatron.outline import outline
    from megatron.persistence.describe import outline_file
    from megatron.summary import render

    def user_function(x):
        return x[:, :2]

    pipeline = build()
    picked = layers.Lambda(user_function)(pipeline.outputs[0], "picked")
    pipeline = megatron.Pipeline(pipeline.inputs, [*pipeline.outputs, picked], name="summary", version="1")
    pipeline.fit({"image": np.random.default_rng(0).random((10, 4, 4, 3)), "label": np.zeros(10, dtype=int)})
    path = pipeline.save(tmp_path)
    # no custom_objects needed; the same table, less the feature names only a live pipeline knows
    assert render(outline_file(path)) == render(outline(pipeline))


def test_summary_marks_unfitted_layers():
    text = build().summary_text()
    assert "not fitted" in text and "(2 stateful, 0 fitted)" in text  # OneHotRange(max_val=1) learns min_val


def test_fitting_logs_what_was_fitted_on_how_many_rows(caplog):
    pipeline = build()
    with caplog.at_level(logging.INFO, logger="megatron"):
        pipeline.fit(
            {"image": np.random.default_rng(0).random((10, 4, 4, 3)), "label": np.zeros(10, dtype=int)}
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any("layer 'whiten' (Whiten) at node 'scaled': fit on 10 rows" in m for m in messages)
    assert any("pipeline 'summary': fitted 2 layers on 10 rows" in m for m in messages)


def test_nothing_is_printed_by_default(capsys):
    pipeline = build()
    pipeline.fit({"image": np.ones((3, 4, 4, 3)), "label": np.zeros(3, dtype=int)})
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
