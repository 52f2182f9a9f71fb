"""``Pipeline``: a named, versioned graph that fits, transforms, evaluates and stores.

The graph itself (:class:`~megatron.graph.Graph`), planning and executing
(:mod:`megatron.execution`), reading the data given (:mod:`megatron.io.feeds`) and storing
(:mod:`megatron.storage`) live in their own modules; this one is the user's API over them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.arguments import positive_int
from megatron.errors import ConfigError, DataError, GraphError, StorageError
from megatron.evaluating import Evaluating
from megatron.execution.elsewhere import HERE, run_elsewhere
from megatron.execution.executor import Executor, resolve_executor
from megatron.execution.lean import lean_transform
from megatron.execution.plan import Plan, Plans
from megatron.execution.readiness import check_fitted, check_incremental
from megatron.execution.stages import StagedFit
from megatron.fingerprint import GraphFingerprint
from megatron.graph.node import Input, Node
from megatron.graph.part import Part, select_part, whole_part
from megatron.graph.topology import Graph
from megatron.io.feeds import Data, foreign_part, read_batch, read_feeds, rows_in
from megatron.io.streams import check_stream, numbered
from megatron.layers.base import Layer
from megatron.metrics.base import MetricNode
from megatron.outputs import Outputs
from megatron.progress import progress_scope
from megatron.routing import FitParams, applied, route
from megatron.showing import Showing
from megatron.sparse import dense_outputs
from megatron.staging import Staging
from megatron.storage import Storage, open_storage
from megatron.storage.cache import cached_outputs
from megatron.working import GraphMethods

if TYPE_CHECKING:
    from megatron.persistence import SavedPipeline

logger = logging.getLogger("megatron")


class Pipeline(Evaluating, Staging, Showing, GraphMethods):
    """A named, versioned graph from :class:`~megatron.nodes.Input` nodes to output nodes.

    Metrics called on nodes of the graph are found without being listed; ``metrics=`` adds
    more. ``storage`` (a :class:`~megatron.storage.Storage`, a URL such as ``memory://`` or a
    connection a plugin supports) keeps every ``transform`` output by observation index.
    ``executor`` runs the steps (an :class:`~megatron.execution.Executor` or a registered name).
    ``optimize=False`` runs every layer as written: no folded affine chains, no in-place steps.
    """

    def __init__(
        self,
        inputs: Input | Sequence[Input],
        outputs: Node | Sequence[Node],
        name: str,
        version: str | float | int | None = None,
        storage: Any = None,
        metrics: Sequence[MetricNode] | None = None,
        *,
        executor: Executor | str | None = None,
        optimize: bool = True,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"A Pipeline needs a non-empty string name; got {name!r}.")
        self.name = name
        self.version = None if version is None else str(version)
        for metric in metrics or ():
            if not isinstance(metric, MetricNode):
                raise GraphError(f"Pipeline {name!r}: metrics= takes metric nodes; got {metric!r}.")
        self.graph = Graph(inputs, outputs, list(metrics or ()), where=f"Pipeline {name!r}")
        """The checked graph: its inputs, outputs, metrics and layer calls, for walking a pipeline."""
        self._executor = resolve_executor(executor)
        self.storage: Storage | None = open_storage(storage, self.name, self.version)
        self._plans = Plans(self.graph, optimize)
        self._whole = whole_part(self.graph)
        self._fingerprint = GraphFingerprint(self.graph)

    # -- the graph ---------------------------------------------------------------------------
    @property
    def inputs(self) -> tuple[Input, ...]:
        return self.graph.inputs

    @property
    def outputs(self) -> tuple[Node, ...]:
        return self.graph.outputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.graph.output_names

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the graph once, in topological order."""
        return self.graph.layers

    @property
    def nodes(self) -> list[Node]:
        """Every node of the graph: the inputs, then layer outputs in topological order."""
        return self.graph.nodes

    @property
    def fingerprint(self) -> str:
        """Identifies what this pipeline computes: it changes with the graph, a layer's class, a
        hyperparameter (a function by what it computes: code, defaults, closure, globals) or
        anything a layer learns, so stored outputs of another configuration or fit are never
        served. See :mod:`megatron.fingerprint` for what it reads, and when it is recomputed.
        """
        return self._fingerprint.value

    # -- fitting -----------------------------------------------------------------------------
    def fit(
        self, data: Data, progress: bool | None = None, *, fit_params: FitParams | None = None, **routed: Any
    ) -> Pipeline:
        """Fit every stateful layer once, in topological order, on its fully transformed inputs.

        ``progress`` switches the progress output of layers that have one (Keras). Data the core
        does not read itself (a dask DataFrame) goes to the plugin that claims it. ``sample_weight=``
        (or any argument) goes to each layer whose fit takes it, ``fit_params={name: {...}}`` to one
        layer (:mod:`megatron.routing`).
        """
        part = foreign_part(data)
        routing = route(self.name, self.graph, "fit", fit_params, routed, foreign=part is not None)
        if (
            part is not None
            and (done := run_elsewhere(self, "fit", data, part, {"progress": progress})) is not HERE
        ):
            return done
        layers = self.graph.stateful_layers
        plan = self._plans.get("fit", (), fit=layers)
        feeds, _ = read_feeds(plan.inputs, data, None, self.name, "fit")
        start = time.perf_counter()
        with progress_scope(progress), applied(routing, self._plans, self._executor, data, rows_in(feeds)):
            self._executor.run(plan, feeds)
        seconds = time.perf_counter() - start
        logger.info(
            "pipeline %r: fitted %d layers on %d rows in %.3f s",
            self.name,
            len(layers),
            rows_in(feeds),
            seconds,
        )
        return self

    def partial_fit(self, data: Data, *, fit_params: FitParams | None = None, **routed: Any) -> Pipeline:
        """Update every stateful layer with one more batch (each layer's ``partial_fit``), routing
        arguments as :meth:`fit` does."""
        layers = self.graph.stateful_layers
        routing = route(self.name, self.graph, "partial_fit", fit_params, routed)
        check_incremental(self.name, self.graph, layers, "partial_fit")
        plan = self._plans.get("partial_fit", (), fit=layers, mode="partial_fit")
        feeds, _ = read_feeds(plan.inputs, data, None, self.name, "partial_fit")
        with applied(routing, self._plans, self._executor, data, rows_in(feeds)):
            self._executor.run(plan, feeds)
        return self

    def fit_generator(
        self,
        batches: Iterable[Data],
        steps_per_epoch: int | None = None,
        epochs: int = 1,
        progress: bool | None = None,
        *,
        fit_params: FitParams | None = None,
        **routed: Any,
    ) -> Pipeline:
        """Fit from batches, exactly: one stage of passes per depth of stateful layers.

        ``progress`` shows a progress bar (default: when stderr is a terminal).

        A layer is fitted only once everything upstream of it is final, so the result equals
        ``fit`` on all the data for layers whose ``partial_fit`` is exact. Each stage makes one
        pass of ``steps_per_epoch`` batches (all of them when None); a stage with an
        :attr:`~megatron.layers.StatefulLayer.iterative` layer (a Keras model, scikit-learn's
        SGD) makes ``epochs`` passes, of which the one-pass statistics beside it see only the
        first. A re-iterable source (a list, a megatron source) is iterated afresh for each
        pass; a one-shot iterator is drawn from continuously, and then needs
        ``steps_per_epoch`` when more than one pass is needed. Routed arguments name an input.
        """
        stages = self.stages()
        routing = route(self.name, self.graph, "partial_fit", fit_params, routed, stream=True)
        check_incremental(
            self.name, self.graph, [layer for stage in stages for layer in stage], "fit_generator"
        )
        positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True, error=DataError)
        positive_int(epochs, "epochs", error=DataError)
        check_stream(self.name, batches, "fit_generator")
        fit = StagedFit(
            self.name, self.graph, self._plans, self._executor, batches, steps_per_epoch, epochs, progress
        )
        fit.run(stages, routing)
        return self

    # -- transforming ------------------------------------------------------------------------
    def transform(
        self,
        data: Data,
        index: Any = None,
        cache: bool = False,
        *,
        outputs: str | Node | Sequence[str | Node] | None = None,
        store: bool = True,
    ) -> Outputs:
        """Compute the outputs for ``data``; with storage, store them under ``index``.

        With ``cache=True``, rows whose keys are already stored for this very fit are read
        from storage and only the others are computed; the result keeps the input order.
        ``outputs`` names the nodes to compute (outputs or intermediate nodes), from only the
        inputs they need; a storage keeps whole rows, so it refuses a part without every
        output unless ``store=False``, which computes without storing.
        """
        if (lean := lean_transform(self, data, index, cache, outputs, store)) is not None:
            return lean  # a dict of numpy arrays, read and answered with less work
        foreign = foreign_part(data)
        if foreign is not None:
            options = {"index": index, "cache": cache}
            if outputs is not None or not store:  # only what was asked: a plugin refuses what it cannot do
                options.update(outputs=outputs, store=store)
            if (done := run_elsewhere(self, "transform", data, foreign, options)) is not HERE:
                return done
        part = self._part(outputs, cache, store)
        plan = self._transform_plan("transform", self._whole if cache else part)  # a cache keeps whole rows
        feeds, index = read_feeds(plan.inputs, data, index, self.name, "transform")
        if not cache:
            return self._outputs(plan, part, feeds, index, 0, store=store)
        storage = self._cache_storage()
        n = rows_in(feeds)
        index = np.arange(n) if index is None else index
        fingerprint = self.fingerprint

        def compute(rows: np.ndarray) -> Outputs:
            return self._outputs(plan, self._whole, [f[rows] for f in feeds], index[rows], 0, fingerprint)

        found = cached_outputs(
            storage, fingerprint, self.output_names, index, n, compute, self._graph_feature_names
        )
        return found if part is self._whole else found.select(part.names)

    def transform_generator(
        self,
        batches: Iterable[Data],
        steps: int | None = None,
        progress: bool | None = None,
        *,
        outputs: str | Node | Sequence[str | Node] | None = None,
        store: bool = True,
    ) -> Iterator[Outputs]:
        """Transform batch by batch, lazily. Each batch keeps its own index (a DataFrame's
        index, or positions continuing from the previous batch) and is stored under it.
        ``outputs`` and ``store`` are those of :meth:`transform`."""
        part = self._part(outputs, False, store)
        plan = self._transform_plan("transform_generator", part)
        positive_int(steps, "steps", allow_none=True, error=DataError)
        check_stream(self.name, batches, "transform_generator")

        def run() -> Iterator[Outputs]:
            start = 0
            for i, batch in numbered(batches, steps, f"{self.name}: transform", progress, self.name):
                feeds, index = read_batch(plan.inputs, batch, i, self.name, "transform_generator")
                yield self._outputs(plan, part, feeds, index, start, store=store)
                start += rows_in(feeds)

        return run()

    def _part(self, outputs: Any, cache: bool, store: bool) -> Part:
        """The part of the graph ``transform(outputs=...)`` asks for, checked against storage."""
        if outputs is None:
            part = self._whole
        else:
            part = select_part(self.graph, outputs)
            if set(part.names) == set(self.output_names):
                part = self._whole if part.names == self.output_names else part
        if cache and not store:
            raise ConfigError(f"Pipeline {self.name!r}: cache=True stores the rows it computes; store=False.")
        if cache and set(part.names) != set(self.output_names):
            raise ConfigError(
                f"Pipeline {self.name!r}: transform(cache=True) reads and stores whole rows of the outputs "
                f"{list(self.output_names)}; outputs= asks for {list(part.names)}."
            )
        if store and self.storage is not None and not part.whole:
            missing = [name for name in self.output_names if name not in part.names]
            raise StorageError(
                f"Pipeline {self.name!r}: its storage keeps whole rows, and outputs= {list(part.names)} "
                f"leaves out outputs {missing}; pass store=False to compute them without storing."
            )
        return part

    def _transform_plan(self, operation: str, part: Part) -> Plan:
        key = "transform" if part is self._whole else ("transform", part.names)
        plan = self._plans.cached(key) or self._plans.get(key, (*part.nodes, *part.rows))
        if plan.requires_fitted:
            check_fitted(self.name, self.graph, plan.requires_fitted, operation)
        return plan

    def _cache_storage(self) -> Storage:
        if self.storage is None:
            raise StorageError(f"Pipeline {self.name!r}: transform(cache=True) needs a storage.")
        windowed = [layer.name for layer in self.layers if layer.stream_stateful]
        if windowed:
            raise GraphError(
                f"Pipeline {self.name!r}: transform(cache=True) cannot compute rows one by one, because "
                f"the outputs of layers {windowed} depend on neighbouring rows."
            )
        return self.storage

    def _outputs(
        self,
        plan: Plan,
        part: Part,
        feeds: list[np.ndarray],
        index: Any,
        start: int,
        fingerprint: str | None = None,
        store: bool = True,
    ) -> Outputs:
        """Run the transform plan, select the index rows that row filters kept, and store."""
        values = dense_outputs(self.name, part.names, self._executor.run(plan, feeds))
        n_outputs = len(part.nodes)
        if index is None and (start or part.rows):
            index = np.arange(start, start + rows_in(feeds))
        for positions in values[n_outputs:]:  # the rows each filter kept, in order
            index = index[positions]
        outputs = Outputs(part.names, values[:n_outputs], index, self._graph_feature_names)
        if store and self.storage is not None:
            stored = outputs if part is self._whole else outputs.select(self.output_names)
            self.storage.write(stored, fingerprint or self.fingerprint)
        return outputs

    # -- saving ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Save to ``directory/{name}-{version}.megatron`` as data (a JSON graph, numpy arrays,
        plugin artifacts; no pickle) and return the path. Reload with :func:`megatron.load_pipeline`."""
        from megatron.persistence import save_pipeline

        return save_pipeline(self, directory)

    @classmethod
    def from_saved(
        cls, saved: SavedPipeline, storage: Any = None, *, executor: Executor | str | None = None
    ) -> Pipeline:
        """The pipeline a file holds, from what :func:`megatron.persistence.read_pipeline` read
        (:func:`megatron.load_pipeline` does both); ``storage`` reattaches output storage, and
        ``executor`` chooses how it runs (neither is part of the file)."""
        with saved.building():
            return cls(
                saved.inputs,
                saved.outputs,
                saved.name,
                saved.version,
                storage=storage,
                metrics=saved.metrics,
                executor=executor,
            )

    def __repr__(self) -> str:
        version = f" version={self.version!r}" if self.version is not None else ""
        return (
            f"<Pipeline {self.name!r}{version} inputs={[n.name for n in self.inputs]} "
            f"outputs={list(self.output_names)}>"
        )
