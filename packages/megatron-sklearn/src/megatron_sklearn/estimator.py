"""``PipelineEstimator``: a megatron pipeline used as a scikit-learn estimator."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, check_X_y, validate_data

import megatron
from megatron.errors import LayerError
from megatron.layers.base import Layer
from megatron_sklearn.layer import Sklearn


def layer_key(pipeline: megatron.Pipeline, layer: Layer) -> str:
    """The name nested parameters use for ``layer``: the name of its first output node (so
    ``Sklearn(PCA())(x, 'pca')`` is ``pca``), or the layer's own name."""
    for call in pipeline.graph.calls:
        if call.layer is layer:
            node = call.visible_outputs[0]
            return node.name if node.named else layer.name
    return layer.name


def layer_parameters(layer: Layer) -> dict[str, Any]:
    """A layer's tunable parameters: an sklearn layer's estimator parameters, otherwise the
    layer's hyperparameters."""
    if isinstance(layer, Sklearn):
        return layer.estimator.get_params(deep=True)
    return layer.get_config()


class PipelineEstimator(TransformerMixin, BaseEstimator):
    """A megatron pipeline as a scikit-learn estimator, for ``GridSearchCV``, ``cross_val_score``...

    ``build`` is a function returning a fresh, unfitted :class:`megatron.Pipeline`; the
    estimator feeds ``X`` to the input named ``x`` and ``y`` to the input named ``y``, and
    ``predict``/``transform`` return the output named ``output`` (by default the first).
    Layer hyperparameters are nested parameters, ``<node>__<parameter>``: for
    ``Sklearn(PCA())(x, 'pca')``, ``pca__n_components``. ``score`` is the pipeline's metric
    named ``scoring`` (by default its first metric), or accuracy / R² when it has none.

    Example::

        search = GridSearchCV(PipelineEstimator(build), {'pca__n_components': [2, 5]})
    """

    def __init__(
        self,
        build: Callable[[], megatron.Pipeline],
        x: str = "x",
        y: str = "y",
        output: str | None = None,
        scoring: str | None = None,
        estimator_type: str = "classifier",
        layer_params: dict[str, Any] | None = None,
    ) -> None:
        self.build = build
        self.x = x
        self.y = y
        self.output = output
        self.scoring = scoring
        self.estimator_type = estimator_type
        self.layer_params = layer_params

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = self.estimator_type
        tags.transformer_tags = TransformerTags()  # transform() gives the output too
        if self.estimator_type == "classifier":
            from sklearn.utils import ClassifierTags

            tags.classifier_tags = ClassifierTags()
        elif self.estimator_type == "regressor":
            from sklearn.utils import RegressorTags

            tags.regressor_tags = RegressorTags()
        return tags

    # -- parameters ------------------------------------------------------------------------------
    def _pipeline(self) -> megatron.Pipeline:
        pipeline = self.build()
        layers = {layer_key(pipeline, layer): layer for layer in pipeline.layers}
        overrides = self.layer_params if isinstance(self.layer_params, dict) else {}
        for name, value in overrides.items():
            key, _, parameter = name.partition("__")
            layer = layers[key]
            if isinstance(layer, Sklearn):
                layer.estimator.set_params(**{parameter: value})
            else:
                setattr(layer, parameter, value)
        return pipeline

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=False)
        if deep and callable(self.build):
            pipeline = self._pipeline()
            for layer in pipeline.layers:
                key = layer_key(pipeline, layer)
                params.update({f"{key}__{name}": value for name, value in layer_parameters(layer).items()})
        return params

    def set_params(self, **params: Any) -> PipelineEstimator:
        nested = {k: v for k, v in params.items() if "__" in k}
        if nested:
            pipeline = self.build()
            known = {layer_key(pipeline, layer): layer for layer in pipeline.layers}
            for name in nested:
                key, _, parameter = name.partition("__")
                layer = known.get(key)
                if layer is None or parameter.split("__")[0] not in layer_parameters(layer):
                    raise ValueError(
                        f"Invalid parameter {name!r}: the pipeline has layers {sorted(known)}; "
                        f"see get_params() for what each one takes."
                    )
            current = self.layer_params if isinstance(self.layer_params, dict) else {}
            self.layer_params = {**current, **nested}
        return super().set_params(**{k: v for k, v in params.items() if "__" not in k})

    # -- estimator API ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, **fit_params: Any) -> PipelineEstimator:
        """Fit a new pipeline on ``X`` (and ``y``). ``sample_weight`` and other ``fit_params`` are
        routed as :meth:`megatron.Pipeline.fit` routes them: each to every layer whose fit takes
        it, ``fit_params={'layer': {...}}`` to one layer; one the layers do not take is a
        :class:`~megatron.errors.ConfigError`. Under scikit-learn's metadata routing, request
        the weights with ``set_fit_request(sample_weight=True)``."""
        if y is None:
            X = validate_data(self, X, reset=True)
        else:
            X, y = validate_data(self, X, y, reset=True)
            if self.estimator_type == "classifier":
                self.classes_ = np.unique(y)
        self.pipeline_ = self._pipeline()
        data = {self.x: X} if y is None else {self.x: X, self.y: y}
        try:
            if sample_weight is not None:
                fit_params["sample_weight"] = sample_weight
            self.pipeline_.fit(data, progress=False, **fit_params)
        except LayerError as exc:
            if isinstance(exc.__cause__, ValueError):  # scikit-learn's contract: bad data is a ValueError
                raise ValueError(str(exc)) from exc
            raise
        return self

    def _output(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        outputs = self.pipeline_.transform({self.x: X})
        return outputs[self.output] if self.output is not None else outputs[0]

    def predict(self, X: Any) -> np.ndarray:
        return self._output(X)

    def transform(self, X: Any) -> np.ndarray:
        """The output as a 2-D array (one column for one value per observation)."""
        output = self._output(X)
        return output.reshape(len(output), -1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The names of the columns :meth:`transform` gives (scikit-learn's convention), as the
        pipeline names its output (:meth:`megatron.Pipeline.feature_names`) from the names of
        ``X``'s columns: ``input_features``, else those seen in fit (a DataFrame's), else none.
        Where the pipeline does not know them, ``<output>[i]`` for each column. They name the
        columns of ``set_output(transform="pandas")``'s frames."""
        from sklearn.utils.validation import _check_feature_names_in

        check_is_fitted(self, "pipeline_")
        given = _check_feature_names_in(self, input_features, generate_names=False)
        inputs = {self.x: None if given is None else [str(name) for name in given]}
        node = self.output if self.output is not None else self.pipeline_.output_names[0]
        names = self.pipeline_.feature_names(node, inputs=inputs)
        if names is None:
            shape = self.pipeline_.graph.node_named(node).shape  # type: ignore[union-attr]
            if shape is None or None in shape:
                raise ValueError(
                    f"The pipeline does not know the names or the number of the columns of output "
                    f"{node!r}, so get_feature_names_out() cannot name them."
                )
            names = (
                [node]
                if shape == ()
                else [f"{node}[{i}]" for i in range(math.prod(int(d or 0) for d in shape))]
            )
        return np.asarray(names, dtype=object)

    def score(self, X: Any, y: Any) -> float:
        check_is_fitted(self, "pipeline_")
        X, y = check_X_y(X, y)
        if self.pipeline_.metrics:
            metrics = self.pipeline_.evaluate({self.x: X, self.y: y})
            return float(metrics[self.scoring] if self.scoring else next(iter(metrics.values())))
        predictions = self.predict(X)
        if self.estimator_type == "regressor":
            from sklearn.metrics import r2_score

            return float(r2_score(y, predictions))
        return float(np.mean(predictions == y))


__all__ = ["PipelineEstimator"]
