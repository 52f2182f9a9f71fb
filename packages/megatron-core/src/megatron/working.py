"""What a pipeline says and does about its graph as a whole, beyond running it: feature names
(:mod:`megatron.features`), inverse transforms (:mod:`megatron.inversion`) and parameters
(:mod:`megatron.parameters`), mixed into :class:`~megatron.Pipeline` as one class."""

from __future__ import annotations

from megatron.features import PipelineFeatures
from megatron.inversion import PipelineInversion
from megatron.parameters import PipelineParameters


class GraphMethods(PipelineFeatures, PipelineInversion, PipelineParameters):
    """``feature_names``, ``inverse_transform``, ``get_params``, ``set_params`` and ``clone``
    (a mixin of :class:`~megatron.Pipeline`)."""
