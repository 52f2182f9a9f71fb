"""scipy.sparse values between layers: counts stay sparse from CountVectorize(sparse=True)
through scikit-learn estimators that take them, and a sparse output is refused clearly."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression

import megatron
from megatron.errors import GraphError
from megatron.layers import CountVectorize, Filter
from megatron.nodes import Input
from megatron_sklearn import Sklearn

WORDS = ["good", "bad", "film", "plot", "great", "awful", "actors", "music"]


def reviews(n=60, seed=0):
    rng = np.random.default_rng(seed)
    docs = np.array([" ".join(rng.choice(WORDS, size=rng.integers(1, 8))) for _ in range(n)], dtype=object)
    labels = np.array([int("good" in d or "great" in d) for d in docs])
    return docs, labels


def text_pipeline(sparse):
    docs, label = Input("doc", dtype=object), Input("label")
    counts = CountVectorize(sparse=sparse)(docs, "counts")
    tfidf = Sklearn(TfidfTransformer())(counts, "tfidf")
    preds = Sklearn(LogisticRegression(), method="predict_proba")([tfidf, label], "preds")
    return megatron.Pipeline([docs, label], preds, name=f"text_{sparse}")


def test_every_step_stays_sparse_in_eager_mode_and_matches_the_dense_pipeline():
    docs, labels = reviews()
    d, y = Input("doc", dtype=object)(docs), Input("label")(labels)
    counts = CountVectorize(sparse=True)(d)
    tfidf = Sklearn(TfidfTransformer())(counts)
    preds = Sklearn(LogisticRegression(), method="predict_proba")([tfidf, y])
    assert scipy.sparse.issparse(counts.output) and scipy.sparse.issparse(tfidf.output)
    assert type(preds.output) is np.ndarray
    dense = CountVectorize()(Input("doc", dtype=object)(docs))
    np.testing.assert_array_equal(counts.output.toarray(), dense.output)
    sparse_pipeline, dense_pipeline = text_pipeline(True), text_pipeline(False)
    for pipeline in (sparse_pipeline, dense_pipeline):
        pipeline.fit({"doc": docs, "label": labels})
    np.testing.assert_allclose(
        sparse_pipeline.transform({"doc": docs})["preds"], dense_pipeline.transform({"doc": docs})["preds"]
    )


def test_a_wide_vocabulary_is_never_densified():
    rng = np.random.default_rng(1)
    vocabulary = np.array([f"w{i}" for i in range(40_000)])
    docs = np.array([" ".join(rng.choice(vocabulary, 15)) for _ in range(1_000)], dtype=object)
    labels = rng.integers(0, 2, 1_000)
    pipeline = text_pipeline(True)
    tracemalloc.start()
    try:
        pipeline.fit({"doc": docs, "label": labels})
        preds = pipeline.transform({"doc": docs})["preds"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert preds.shape == (1_000, 2)
    dense_bytes = 1_000 * 40_000 * 8  # 320 MB as a dense int64 array
    assert peak < dense_bytes / 8, f"peak {peak / 1e6:.0f} MB: something densified the counts"


def test_a_sparse_output_is_refused_with_a_hint_to_densify():
    docs, _labels = reviews()
    doc = Input("doc", dtype=object)
    pipeline = megatron.Pipeline(doc, CountVectorize(sparse=True)(doc, "counts"), name="counts")
    pipeline.fit({"doc": docs})
    with pytest.raises(GraphError, match="output 'counts' is a scipy.sparse .*toarray"):
        pipeline.transform({"doc": docs})


def test_a_row_filter_keeps_sparse_rows_aligned():
    docs, labels = reviews(80, seed=2)
    doc, label, keep = Input("doc", dtype=object), Input("label"), Input("keep", dtype=bool)
    counts = CountVectorize(sparse=True)(doc, "counts")
    kept, kept_labels = Filter()([keep, counts, label], ["kept", "kept_labels"])
    preds = Sklearn(LogisticRegression())([kept, kept_labels], "preds")
    pipeline = megatron.Pipeline([doc, label, keep], preds, name="filtered")
    mask = np.arange(80) % 3 != 0
    pipeline.fit({"doc": docs, "label": labels, "keep": mask})
    out = pipeline.transform({"doc": docs, "label": labels, "keep": mask})
    dense = CountVectorize()(Input("doc", dtype=object)(docs)).output
    reference = LogisticRegression().fit(dense[mask], labels[mask])
    np.testing.assert_array_equal(out["preds"], reference.predict(dense[mask]))
    np.testing.assert_array_equal(out.index, np.flatnonzero(mask))


def test_out_of_fold_outputs_of_a_sparse_transformer_stay_sparse():
    docs, _ = reviews()
    counts = CountVectorize(sparse=True)(Input("doc", dtype=object)(docs)).output
    layer = Sklearn(TfidfTransformer(), cv=3)
    layer(Input("c", (len(WORDS),)))
    out = layer.fit_transform(counts)
    assert scipy.sparse.issparse(out) and out.shape == counts.shape
    for test in np.array_split(np.arange(len(docs)), 3):
        train = np.setdiff1d(np.arange(len(docs)), test)
        expected = TfidfTransformer().fit(counts[train]).transform(counts[test])
        np.testing.assert_allclose(out[test].toarray(), expected.toarray())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=6), min_size=1, max_size=12))
def test_sparse_counts_equal_dense_counts(token_lists):
    docs = np.array([" ".join(tokens) for tokens in token_lists] + [" ".join(WORDS)], dtype=object)
    sparse, dense = CountVectorize(sparse=True), CountVectorize()
    sparse.fit(docs)
    dense.fit(docs)
    got = sparse.transform(docs)
    assert scipy.sparse.issparse(got)
    np.testing.assert_array_equal(got.toarray(), dense.transform(docs))


def test_a_row_filter_whose_first_input_is_sparse_keeps_rows_aligned_in_fit_transform_and_eager_mode():
    docs, labels = reviews(80, seed=3)
    labels = np.where(np.arange(80) % 4 == 0, -1, labels)  # unlabelled rows are filtered out
    doc, label = Input("doc", dtype=object), Input("label")
    kept, kept_labels = Filter(lambda c, y: y >= 0)(
        [CountVectorize(sparse=True)(doc, "c"), label], ["ck", "lk"]
    )
    pipeline = megatron.Pipeline(
        [doc, label], Sklearn(LogisticRegression())([kept, kept_labels], "pr"), name="sf"
    )
    pipeline.fit({"doc": docs, "label": labels})
    out = pipeline.transform({"doc": docs, "label": labels})
    keep = labels >= 0
    dense = CountVectorize()(Input("doc", dtype=object)(docs)).output
    reference = LogisticRegression().fit(dense[keep], labels[keep])
    np.testing.assert_array_equal(out["pr"], reference.predict(dense[keep]))
    np.testing.assert_array_equal(out.index, np.flatnonzero(keep))
    eager_counts = CountVectorize(sparse=True)(Input("doc", dtype=object)(docs))
    eager_kept, _ = Filter(lambda c, y: y >= 0)([eager_counts, Input("label")(labels)])
    assert scipy.sparse.issparse(eager_kept.output)
    np.testing.assert_array_equal(eager_kept.output.toarray(), dense[keep])


@settings(max_examples=40, deadline=None)
@given(
    mask=st.lists(st.booleans(), min_size=1, max_size=12),
    sparse_at=st.integers(0, 2),
    fmt=st.sampled_from(["csr", "csc", "coo", "lil"]),
    with_condition=st.booleans(),
)
def test_a_row_filter_keeps_the_rows_of_sparse_inputs_of_any_format_at_any_place(
    mask, sparse_at, fmt, with_condition
):
    """Filter gives a sparse input the rows it gives the dense ones, wherever it is among the
    inputs (the first one too) and whatever its format."""
    mask = np.array(mask)
    n = len(mask)
    dense = [
        np.arange(n * 3, dtype=float).reshape(n, 3) % 4,
        np.arange(n, dtype=float),
        -np.arange(n * 2.0).reshape(n, 2),
    ]
    given = list(dense)
    given[sparse_at] = scipy.sparse.random(
        n, dense[sparse_at].reshape(n, -1).shape[1], density=0.5, format=fmt, random_state=0
    )
    if sparse_at == 1:
        given[1] = scipy.sparse.csr_matrix(dense[1].reshape(n, 1)).asformat(fmt)
    expected = [a.toarray() if scipy.sparse.issparse(a) else a for a in given]
    if with_condition:
        *kept, positions = Filter(lambda *inputs: mask).transform(*given)
    else:
        *kept, positions = Filter().transform(mask, *given)
    np.testing.assert_array_equal(positions, np.flatnonzero(mask))
    for got, want in zip(kept, expected):
        got = got.toarray() if scipy.sparse.issparse(got) else got
        np.testing.assert_array_equal(got, want[mask])
