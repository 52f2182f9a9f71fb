"""The pipeline-as-estimator adapter passes scikit-learn's own estimator checks."""

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

import megatron
from megatron_sklearn import PipelineEstimator, Sklearn


def build_classifier():
    x, y = megatron.nodes.Input("x", (None,)), megatron.nodes.Input("y")
    scaled = megatron.layers.Whiten()(x)
    predicted = Sklearn(LogisticRegression(max_iter=200))([scaled, y], "predicted")
    return megatron.Pipeline([x, y], predicted, name="checked_classifier")


def build_regressor():
    x, y = megatron.nodes.Input("x", (None,)), megatron.nodes.Input("y")
    predicted = Sklearn(Ridge())([x, y], "predicted")
    return megatron.Pipeline([x, y], predicted, name="checked_regressor")


def expected_failures(estimator):
    """The checks that do not apply to the classifier pipeline: its transform() output is its
    predicted class labels, which are ints whatever the input's dtype; and sample_weight reaches
    only the layers whose fit takes it, so its Whiten learns unweighted (weights are then not
    repeated rows). The regressor, whose one layer takes weights, passes both."""
    if estimator.estimator_type == "classifier":
        return {
            "check_transformer_preserve_dtypes": "the output is predicted class labels (ints)",
            "check_sample_weight_equivalence_on_dense_data": "Whiten takes no sample_weight",
        }
    return {}


@parametrize_with_checks(
    [
        PipelineEstimator(build_classifier),
        PipelineEstimator(build_regressor, estimator_type="regressor"),
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
