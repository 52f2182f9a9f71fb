"""scikit-learn and the graph-wide APIs: a wrapped estimator's parameters nest under its layer
(get_params/set_params/clone on Pipeline), and PipelineEstimator names its columns
(get_feature_names_out, set_output) and clones with sklearn.base.clone."""

import numpy as np
import pytest
import sklearn.base
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import megatron
from megatron import layers
from megatron.nodes import Input
from megatron_sklearn import PipelineEstimator

pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")

X = pd.DataFrame({"age": [20.0, 30, 45, 50, 61], "income": [1.0, 3, 2, 8, 5]})


def build():
    x = Input("x", (2,))
    return megatron.Pipeline(x, layers.Whiten()(x, "scaled"), name="est")


def test_a_wrapped_estimator_nests_its_parameters_under_the_layer():
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Sklearn(PCA(n_components=2))(x, "pcs"), name="pca")
    params = pipeline.get_params()
    assert params["sklearn__estimator__n_components"] == 2
    before = pipeline.fingerprint
    pipeline.set_params(sklearn__estimator__n_components=1)
    assert pipeline.get_params()["sklearn__estimator__n_components"] == 1
    assert pipeline.fingerprint != before
    pipeline.fit({"x": X.to_numpy()})
    copy = pipeline.clone()
    assert copy.layers[0].estimator is not pipeline.layers[0].estimator
    assert not hasattr(copy.layers[0].estimator, "components_")  # unfitted
    assert copy.get_params()["sklearn__estimator__n_components"] == 1


def test_pipeline_estimator_names_its_columns_and_outputs_frames():
    estimator = PipelineEstimator(build, estimator_type="transformer").fit(X)
    assert estimator.get_feature_names_out().tolist() == ["age", "income"]
    frame = estimator.set_output(transform="pandas").transform(X)
    assert list(frame.columns) == ["age", "income"]
    np.testing.assert_allclose(frame.mean().to_numpy(), 0, atol=1e-12)


def test_without_column_names_the_output_is_numbered():
    estimator = PipelineEstimator(build, estimator_type="transformer").fit(X.to_numpy())
    assert estimator.get_feature_names_out().tolist() == ["scaled[0]", "scaled[1]"]
    assert estimator.get_feature_names_out(["a", "b"]).tolist() == ["a", "b"]


def test_in_a_scikit_learn_pipeline_with_pandas_output():
    chain = make_pipeline(PipelineEstimator(build, estimator_type="transformer"), StandardScaler())
    chain.set_output(transform="pandas")
    assert list(chain.fit_transform(X).columns) == ["age", "income"]


def test_sklearn_clone_gives_an_unfitted_equal_estimator():
    estimator = PipelineEstimator(
        build, estimator_type="transformer", layer_params={"scaled__ignore_nan": True}
    )
    estimator.fit(X)
    copy = sklearn.base.clone(estimator)
    assert not hasattr(copy, "pipeline_")
    assert copy.get_params(deep=False).keys() == estimator.get_params(deep=False).keys()
    assert (
        copy.layer_params == {"scaled__ignore_nan": True} and copy.layer_params is not estimator.layer_params
    )
    with pytest.raises(sklearn.exceptions.NotFittedError):
        copy.get_feature_names_out()
