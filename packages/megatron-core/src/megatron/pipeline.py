"""``Pipeline``: a graph of inputs and layers that fits, transforms, evaluates and stores."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from megatron.errors import (
    DataError,
    GraphError,
    IncrementalFitError,
    LengthMismatchError,
    MegatronError,
    MissingInputError,
    NotFittedError,
    SpecError,
)
from megatron.execution.executor import Executor
from megatron.execution.local import LocalExecutor, layer_failure
from megatron.execution.plan import Mode, Plan, compile_plan, needed_inputs, stateful_stages, upstream_ops
from megatron.fingerprint import pipeline_fingerprint
from megatron.io.batch import Batch
from megatron.layers.base import Layer, StatefulLayer
from megatron.metrics.base import MetricNode
from megatron.nodes import Apply, Input, Node, as_node_list, common_rows, join_graphs
from megatron.outputs import Outputs
from megatron.progress import batch_count, progress, progress_scope
from megatron.storage import Storage, open_storage

logger = logging.getLogger("megatron")
Data = Mapping[str, Any] | Any  # a mapping of input name to array-like, or a pandas DataFrame


class Pipeline:
    """A named, versioned graph from :class:`~megatron.nodes.Input` nodes to output nodes.

    Metrics called on nodes of the graph are found without being listed; ``metrics=`` adds
    more. ``storage`` (a :class:`~megatron.storage.Storage`, a URL such as ``memory://`` or a
    connection a plugin supports) keeps every ``transform`` output by observation index.
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
    ) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"A Pipeline needs a non-empty string name; got {name!r}.")
        self.name = name
        self.version = None if version is None else str(version)
        self.inputs: tuple[Input, ...] = as_node_list(inputs, f"Pipeline {name!r} inputs")  # type: ignore[assignment]
        self.outputs: tuple[Node, ...] = as_node_list(outputs, f"Pipeline {name!r} outputs")
        for node in self.inputs:
            if not isinstance(node, Input):
                raise GraphError(
                    f"Pipeline {name!r}: inputs must be Input nodes; {node.name!r} is computed by "
                    f"layer {node.layer.name!r}."  # type: ignore[union-attr]
                )
        for node in self.outputs:
            if not node.named:
                raise GraphError(
                    f"Pipeline {name!r}: output node {node.name!r} has no name; name it when calling "
                    f"its layer, e.g. layer(nodes, 'my_output')."
                )
        self.output_names: tuple[str, ...] = tuple(node.name for node in self.outputs)
        try:
            self._rows = common_rows(self.outputs, f"Pipeline {name!r}")
        except SpecError as exc:
            raise GraphError(str(exc)) from None
        self.metrics: tuple[MetricNode, ...] = self._find_metrics(list(metrics or ()))
        roots = list(self.outputs) + [n for m in self.metrics for n in m.inputs]
        join_graphs([*self.inputs, *roots])  # automatic names unique across all of it
        self._ops: list[Apply] = upstream_ops(roots)
        self._check_inputs_declared(roots)
        self._check_unique_names()
        self._executor: Executor = _resolve_executor(executor)
        self.storage: Storage | None = open_storage(storage, self.name, self.version)
        self._plans: dict[Any, tuple[Plan, tuple[StatefulLayer, ...]]] = {}
        self._plans_lock = threading.Lock()

    # -- graph -------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Identifies what this pipeline computes: it changes with the graph, a layer's class, a
        hyperparameter (a function by what it computes: code, defaults, closure, globals) or
        anything a layer learns, so stored outputs of another configuration or fit are never
        served. See :mod:`megatron.fingerprint` for what it reads, and when it is recomputed.
        """
        return pipeline_fingerprint(self)

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the graph once, in topological order."""
        seen: dict[int, Layer] = {}
        for op in self._ops:
            seen.setdefault(id(op.layer), op.layer)
        return list(seen.values())

    @property
    def nodes(self) -> list[Node]:
        """Every node of the graph: the inputs, then layer outputs in topological order."""
        return list(self.inputs) + [n for op in self._ops for n in op.outputs]

    def _find_metrics(self, listed: list[MetricNode]) -> tuple[MetricNode, ...]:
        """The metrics of ``metrics=``, then those found on the pipeline's own graph: the
        inputs and every node computed on the way to the outputs. A metric is found only when
        every node it reads lies there, so that a metric of another pipeline sharing these
        inputs (on its own model's predictions) never pulls that model into this one."""
        graph_nodes = list(self.inputs) + [n for op in upstream_ops(self.outputs) for n in op.outputs]
        in_graph = {id(n) for n in graph_nodes}
        found: dict[int, MetricNode] = {}
        for metric in listed:
            if not isinstance(metric, MetricNode):
                raise GraphError(f"Pipeline {self.name!r}: metrics= takes metric nodes; got {metric!r}.")
            found[id(metric)] = metric
        for node in graph_nodes:
            for metric in node.metrics:
                if all(id(n) in in_graph for n in metric.inputs):
                    found.setdefault(id(metric), metric)
        metrics = tuple(found.values())
        names = [m.name for m in metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise GraphError(f"Pipeline {self.name!r}: several metrics are named {duplicates}.")
        return metrics

    def _check_inputs_declared(self, roots: list[Node]) -> None:
        declared = {id(n) for n in self.inputs}
        for node in needed_inputs(roots, self._ops):
            if id(node) not in declared:
                raise GraphError(
                    f"Pipeline {self.name!r} needs input {node.name!r}, which is not among its "
                    f"declared inputs {[n.name for n in self.inputs]}."
                )

    def _check_unique_names(self) -> None:
        seen: dict[str, Node] = {}
        for node in self.nodes:
            other = seen.setdefault(node.name, node)
            if other is not node:
                raise GraphError(
                    f"Pipeline {self.name!r}: two different nodes are named {node.name!r} ({other!r} "
                    f"and {node!r}); node names must be unique."
                )

    # -- plans -------------------------------------------------------------------------------
    def _plan(
        self, key: Any, results: Sequence[Node], fit: Sequence[StatefulLayer] = (), mode: Mode = "fit"
    ) -> tuple[Plan, tuple[StatefulLayer, ...]]:
        """The plan of an operation (cached), and the layers it needs already fitted."""
        cached = self._plans.get(key)
        if cached is None:
            fitting = {id(layer) for layer in fit}
            calls = [op for op in self._ops if id(op.layer) in fitting]
            plan = compile_plan(results, fit=calls, mode=mode)
            must_be_fitted = {
                id(step.op.layer): step.op.layer
                for step in plan.steps
                if step.mode == "transform" and step.op.layer.stateful and id(step.op.layer) not in fitting
            }
            cached = (plan, tuple(must_be_fitted.values()))  # type: ignore[arg-type]
            with self._plans_lock:
                self._plans[key] = cached
        return cached

    def _stateful_layers(self) -> list[StatefulLayer]:
        return [layer for layer in self.layers if layer.stateful]  # type: ignore[misc]

    def _check_fitted(self, layers: tuple[StatefulLayer, ...], operation: str) -> None:
        for layer in layers:
            if not layer.fitted:
                node = next(op for op in self._ops if op.layer is layer)
                raise NotFittedError(
                    f"Pipeline {self.name!r} cannot {operation}: {node.describe()} is not fitted. "
                    "Call fit(), partial_fit() or fit_generator() first."
                )

    def _check_incremental(self, layers: Iterable[StatefulLayer], operation: str) -> None:
        for layer in layers:
            if not layer.supports_partial_fit() and not layer.drives_its_own_loop():
                node = next(op for op in self._ops if op.layer is layer)
                raise IncrementalFitError(
                    f"Pipeline {self.name!r} cannot {operation}: {node.describe()} has no "
                    "partial_fit(), so it cannot learn batch by batch. Use fit() on the whole "
                    "dataset, or a layer that implements partial_fit()."
                )

    # -- data --------------------------------------------------------------------------------
    def _feeds(self, plan: Plan, data: Data, index: Any, operation: str) -> tuple[list[np.ndarray], Any]:
        columns, frame_index = _columns(data)
        if columns is None:
            raise DataError(_not_a_mapping(self.name, operation, data, plan.inputs or self.inputs))
        feeds = []
        read = columns.read if type(columns) is _FrameColumns else None
        for node in plan.inputs:
            try:
                value = columns[node.name] if read is None else read(node)
            except KeyError:
                raise _missing_input(self.name, node, columns, plan, operation) from None
            except TypeError:
                raise DataError(
                    f"Pipeline {self.name!r}.{operation}() takes a mapping of input name to array "
                    f"or a pandas DataFrame; got {type(data).__name__}."
                ) from None
            feeds.append(node.check(value))
        if len(feeds) > 1:
            n = len(feeds[0])
            if any(len(f) != n for f in feeds):
                lengths = ", ".join(f"{node.name!r}: {len(f)}" for node, f in zip(plan.inputs, feeds))
                raise LengthMismatchError(
                    f"Pipeline {self.name!r}.{operation}(): inputs hold different numbers of "
                    f"observations ({lengths})."
                )
        if index is None:
            index = frame_index
        if index is not None:
            index = np.asarray(index)
            if feeds and len(index) != len(feeds[0]):
                raise LengthMismatchError(
                    f"Pipeline {self.name!r}.{operation}(): the index has {len(index)} keys for "
                    f"{len(feeds[0])} observations."
                )
        return feeds, index

    def _batches(
        self,
        batches: Iterable[Data],
        steps: int | None,
        description: str,
        show: bool | None,
        passes: _Passes | None = None,
    ) -> Iterator[tuple[int, Data]]:
        """One pass of numbered batches, with a progress bar where enabled."""
        total = batch_count(batches, steps)
        return enumerate(
            progress(
                _take(batches, steps, self.name, passes), total=total, description=description, requested=show
            )
        )

    def _batch_feeds(
        self, plan: Plan, batch: Data, number: int, operation: str
    ) -> tuple[list[np.ndarray], Any]:
        """``_feeds`` for one batch of a stream; errors say which batch."""
        try:
            return self._feeds(plan, batch, None, operation)
        except DataError as exc:
            raise type(exc)(f"Batch {number}: {exc}") from None

    # -- operations --------------------------------------------------------------------------
    def fit(self, data: Data, progress: bool | None = None) -> Pipeline:
        """Fit every stateful layer once, in topological order, on its fully transformed inputs.

        ``progress`` switches the progress output of layers that have one (Keras).
        """
        layers = self._stateful_layers()
        plan, _ = self._plan("fit", (), fit=layers)
        feeds, _ = self._feeds(plan, data, None, "fit")
        start = time.perf_counter()
        with progress_scope(progress):
            self._executor.run(plan, feeds)
        logger.info(
            "pipeline %r: fitted %d layers on %d rows in %.3f s",
            self.name,
            len(layers),
            len(feeds[0]) if feeds else 0,
            time.perf_counter() - start,
        )
        return self

    def partial_fit(self, data: Data) -> Pipeline:
        """Update every stateful layer with one more batch (each layer's ``partial_fit``)."""
        layers = self._stateful_layers()
        self._check_incremental(layers, "partial_fit")
        plan, _ = self._plan("partial_fit", (), fit=layers, mode="partial_fit")
        feeds, _ = self._feeds(plan, data, None, "partial_fit")
        self._executor.run(plan, feeds)
        return self

    def fit_generator(
        self,
        batches: Iterable[Data],
        steps_per_epoch: int | None = None,
        epochs: int = 1,
        progress: bool | None = None,
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
        ``steps_per_epoch`` when more than one pass is needed.
        """
        stages = stateful_stages(self._ops)
        self._check_incremental([layer for stage in stages for layer in stage], "fit_generator")
        _check_count("steps_per_epoch", steps_per_epoch, allow_none=True)
        _check_count("epochs", epochs)
        _check_stream(self.name, batches, "fit_generator")
        if getattr(batches, "repeat", False) and steps_per_epoch is None:
            raise DataError(
                f"Pipeline {self.name!r}.fit_generator() got a source that repeats forever: pass steps_per_epoch."
            )
        passes = _Passes(self.name, stages, epochs, one_shot=iter(batches) is batches)
        if passes.one_shot and steps_per_epoch is None and passes.total > 1:
            raise DataError(
                f"Pipeline {self.name!r}.fit_generator() needs {passes.total} passes over the data "
                f"({passes.why()}) but got a one-shot iterator: pass a re-iterable source (a list or "
                "a megatron source) or steps_per_epoch."
            )
        with progress_scope(progress):
            for number, stage in enumerate(stages):
                plain = [layer for layer in stage if not layer.drives_its_own_loop()]
                if plain:
                    self._fit_stage(
                        plain, number, len(stages), batches, steps_per_epoch, epochs, passes, progress
                    )
                for layer in stage:
                    if layer.drives_its_own_loop():
                        self._fit_driving_layer(layer, batches, steps_per_epoch, epochs, passes, progress)
        return self

    def _fit_stage(
        self,
        stage: list[StatefulLayer],
        number: int,
        n_stages: int,
        batches: Iterable[Data],
        steps_per_epoch: int | None,
        epochs: int,
        passes: _Passes,
        show: bool | None,
    ) -> None:
        """Fit the layers of one stage together, ``partial_fit`` per batch: one shared pass, then
        ``epochs - 1`` more for the iterative layers among them."""
        for layer in stage:
            layer.reset()
        iterative = [layer for layer in stage if layer.iterative]
        start, rows = time.perf_counter(), 0
        n_epochs = epochs if iterative else 1
        for epoch in range(n_epochs):
            fitting = stage if epoch == 0 else iterative
            key = ("fit_generator", tuple(id(layer) for layer in fitting))
            plan, _ = self._plan(key, (), fit=fitting, mode="partial_fit")
            description = f"{self.name}: fit stage {number + 1}/{n_stages}, epoch {epoch + 1}/{n_epochs}"
            drawn = 0
            for i, batch in self._batches(batches, steps_per_epoch, description, show, passes):
                feeds, _ = self._batch_feeds(plan, batch, i, "fit_generator")
                self._executor.run(plan, feeds)
                rows += len(feeds[0]) if feeds else 0
                drawn += 1
            passes.finished(drawn)
        logger.info(
            "pipeline %r: fit stage %d/%d (%s) on %d rows in %.3f s",
            self.name,
            number + 1,
            n_stages,
            ", ".join(layer.name for layer in stage),
            rows,
            time.perf_counter() - start,
        )

    def _fit_driving_layer(
        self,
        layer: StatefulLayer,
        batches: Iterable[Data],
        steps_per_epoch: int | None,
        epochs: int,
        passes: _Passes,
        show: bool | None,
    ) -> None:
        """Hand a layer that runs its own training loop (Keras) a stream of its inputs,
        computed upstream batch by batch, once per epoch (once, unless it is iterative)."""
        calls = [op for op in self._ops if op.layer is layer]
        inputs = [node for op in calls for node in op.inputs]
        plan, _ = self._plan(("inputs of", id(layer)), inputs)
        width = len(calls[0].inputs)

        def one_pass() -> Iterator[tuple[np.ndarray, ...]]:
            description = f"{self.name}: fit {layer.name}"
            drawn = 0
            for i, batch in self._batches(batches, steps_per_epoch, description, show, passes):
                feeds, _ = self._batch_feeds(plan, batch, i, "fit_generator")
                values = self._executor.run(plan, feeds)
                groups = [values[k : k + width] for k in range(0, len(values), width)]
                drawn += 1
                yield (
                    tuple(np.concatenate(parts) for parts in zip(*groups))
                    if len(groups) > 1
                    else tuple(values)
                )
            passes.finished(drawn)

        try:
            layer.fit_batches(
                one_pass, epochs if layer.iterative else 1, batch_count(batches, steps_per_epoch)
            )
        except MegatronError:
            raise
        except Exception as exc:
            raise layer_failure(calls[0], "fit_batches", [], exc) from exc
        layer.fitted = True

    def transform(self, data: Data, index: Any = None, cache: bool = False) -> Outputs:
        """Compute the outputs for ``data``; with storage, store them under ``index``.

        With ``cache=True``, rows whose keys are already stored for this very fit are read
        from storage and only the others are computed; the result keeps the input order.
        """
        plan, stateful = self._plans.get("transform") or self._plan("transform", (*self.outputs, *self._rows))
        if stateful:
            self._check_fitted(stateful, "transform")
        feeds, index = self._feeds(plan, data, index, "transform")
        if cache:
            return self._cached_outputs(plan, feeds, index)
        return self._outputs(plan, feeds, index, 0)

    def _cached_outputs(self, plan: Plan, feeds: list[np.ndarray], index: Any) -> Outputs:
        if self.storage is None:
            raise MegatronError(f"Pipeline {self.name!r}: transform(cache=True) needs a storage.")
        windowed = [layer.name for layer in self.layers if getattr(layer, "stream_stateful", False)]
        if windowed:
            raise MegatronError(
                f"Pipeline {self.name!r}: transform(cache=True) cannot compute rows one by one, because "
                f"the outputs of layers {windowed} depend on neighbouring rows."
            )
        n = len(feeds[0]) if feeds else 0
        index = np.arange(n) if index is None else index
        fingerprint = self.fingerprint
        found, stored = self.storage.lookup(index, fingerprint=fingerprint)
        missing = np.setdiff1d(np.arange(n), found, assume_unique=True)
        if len(missing) == 0:
            return Outputs(self.output_names, [stored[name] for name in self.output_names], index[found])
        fresh = self._outputs(plan, [f[missing] for f in feeds], index[missing], 0, fingerprint)
        if len(found) == 0:
            return fresh
        position_of = {key: i for i, key in enumerate(index[missing].tolist())}
        fresh_positions = missing[[position_of[key] for key in fresh.index.tolist()]]
        positions = np.concatenate([found, fresh_positions])
        order = np.argsort(positions, kind="stable")
        arrays = [np.concatenate([stored[name], fresh[name]])[order] for name in self.output_names]
        return Outputs(self.output_names, arrays, index[positions[order]])

    def _outputs(
        self, plan: Plan, feeds: list[np.ndarray], index: Any, start: int, fingerprint: str | None = None
    ) -> Outputs:
        """Run the transform plan, select the index rows that row filters kept, and store."""
        values = self._executor.run(plan, feeds)
        n_outputs = len(self.outputs)
        if self._rows:
            if index is None:
                index = np.arange(start, start + (len(feeds[0]) if feeds else 0))
            for positions in values[n_outputs:]:
                index = index[positions]
        elif index is None and start:
            index = np.arange(start, start + (len(feeds[0]) if feeds else 0))
        outputs = Outputs(self.output_names, values[:n_outputs], index)
        if self.storage is not None:
            self.storage.write(outputs.index, outputs, fingerprint or self.fingerprint)
        return outputs

    def transform_generator(
        self, batches: Iterable[Data], steps: int | None = None, progress: bool | None = None
    ) -> Iterator[Outputs]:
        """Transform batch by batch, lazily. Each batch keeps its own index (a DataFrame's
        index, or positions continuing from the previous batch) and is stored under it."""
        plan, stateful = self._plan("transform", (*self.outputs, *self._rows))
        self._check_fitted(stateful, "transform_generator")
        _check_count("steps", steps, allow_none=True)
        _check_stream(self.name, batches, "transform_generator")

        def run() -> Iterator[Outputs]:
            start = 0
            for i, batch in self._batches(batches, steps, f"{self.name}: transform", progress):
                feeds, index = self._batch_feeds(plan, batch, i, "transform_generator")
                yield self._outputs(plan, feeds, index, start)
                start += len(feeds[0]) if feeds else 0

        return run()

    def evaluate(self, data: Data) -> dict[str, float]:
        """Every metric of the pipeline on ``data``, by metric name."""
        if _columns(data)[0] is None:
            raise DataError(_not_a_mapping(self.name, "evaluate", data, self.inputs))
        return self.evaluate_generator([data], progress=False)

    def evaluate_generator(
        self, batches: Iterable[Data], steps: int | None = None, progress: bool | None = None
    ) -> dict[str, float]:
        """Every metric over all ``batches``, exactly (metric states are merged, not averaged)."""
        if not self.metrics:
            raise MegatronError(
                f"Pipeline {self.name!r} has no metrics to evaluate; attach one, e.g. "
                "Accuracy()([labels, preds], 'acc')."
            )
        nodes = list({id(n): n for m in self.metrics for n in m.inputs}.values())
        plan, stateful = self._plan("evaluate", nodes)
        self._check_fitted(stateful, "evaluate")
        _check_stream(self.name, batches, "evaluate_generator")
        position = {id(n): i for i, n in enumerate(nodes)}
        states = [m.metric.initial_state() for m in self.metrics]
        for i, batch in self._batches(batches, steps, f"{self.name}: evaluate", progress):
            feeds, _ = self._batch_feeds(plan, batch, i, "evaluate_generator")
            values = self._executor.run(plan, feeds)
            for i, metric in enumerate(self.metrics):
                args = [values[position[id(n)]] for n in metric.inputs]
                try:
                    states[i] = metric.metric.update(states[i], *args)
                except MegatronError:
                    raise
                except Exception as exc:
                    raise MegatronError(
                        f"Metric {metric.name!r} ({type(metric.metric).__name__}) failed on inputs "
                        f"{[n.name for n in metric.inputs]}: {type(exc).__name__}: {exc}"
                    ) from exc
        return {m.name: m.metric.result(state) for m, state in zip(self.metrics, states)}

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a table of the graph, as Keras's ``model.summary()`` does: each node, its layer
        and key hyperparameters, output spec, inputs and fitted state; inputs, outputs and
        metrics marked. ``print_fn`` receives the text instead of ``print``;
        :meth:`summary_text` returns it."""
        from megatron.summary import summary

        summary(self, print_fn)

    def summary_text(self) -> str:
        """The table that :meth:`summary` prints, as a string."""
        from megatron.summary import summary_text

        return summary_text(self)

    def plot(self, path: str | Path | None = None, rankdir: str = "TB", show_shapes: bool = True) -> Any:
        """Draw the graph to ``path`` (PNG, SVG, PDF or DOT by extension), or return an inline
        image for a notebook. Needs pydot and Graphviz (:meth:`to_dot` needs pydot only)."""
        from megatron.viz import plot

        return plot(self, path, rankdir, show_shapes)

    def to_dot(self, rankdir: str = "TB", show_shapes: bool = True) -> str:
        """The graph in Graphviz's DOT language."""
        from megatron.viz import to_dot

        return to_dot(self, rankdir, show_shapes)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Notebooks show a pipeline as its graph (as text where Graphviz is missing)."""
        try:
            from megatron.viz import render

            return {"image/svg+xml": render(self, "svg").decode(), "text/plain": repr(self)}
        except MegatronError:
            return {"text/plain": repr(self)}

    def save(self, directory: str | Path) -> Path:
        """Save to ``directory/{name}-{version}.megatron`` as data (a JSON graph, numpy arrays,
        plugin artifacts; no pickle) and return the path. Reload with :func:`megatron.load_pipeline`."""
        from megatron.persistence import save_pipeline

        return save_pipeline(self, directory)

    def __getstate__(self) -> dict[str, Any]:
        # compiled plans and locks are rebuilt on demand; everything else is the pipeline
        state = self.__dict__.copy()
        state["_plans"] = {}
        del state["_plans_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._plans_lock = threading.Lock()

    def __repr__(self) -> str:
        version = f" version={self.version!r}" if self.version is not None else ""
        return (
            f"<Pipeline {self.name!r}{version} inputs={[n.name for n in self.inputs]} "
            f"outputs={list(self.output_names)}>"
        )


def _resolve_executor(executor: Executor | str | None) -> Executor:
    if executor is None:
        return LocalExecutor()
    if isinstance(executor, str):
        from megatron.plugins import get_registry

        executor = get_registry().get("executor", executor)
        if isinstance(executor, type):
            executor = executor()
    if not isinstance(executor, Executor):
        raise MegatronError(f"Expected an executor with run(plan, feeds); got {executor!r}.")
    return executor


def _columns(data: Data) -> tuple[Any, Any]:
    """The name -> column lookup of ``data``, and its own index where it has one."""
    if type(data) is dict:
        return data, None
    if isinstance(data, Batch):
        return data, data.index
    if isinstance(data, Mapping):
        return data, None
    if hasattr(data, "columns") and hasattr(data, "index") and hasattr(data, "iloc"):  # pandas
        return _FrameColumns(data), data.index.to_numpy()
    if hasattr(data, "keys") and hasattr(data, "__getitem__") and not isinstance(data, np.ndarray):
        return data, None  # a mapping in all but name
    return None, None


def _describe(data: Any) -> str:
    kind = type(data)
    if kind.__module__.startswith("scipy.sparse"):
        return f"a scipy.sparse {kind.__name__} of shape {data.shape}"
    if isinstance(data, np.ndarray):
        return f"a numpy array of shape {data.shape}"
    if isinstance(data, list | tuple):
        return f"a {kind.__name__} of {len(data)} items"
    return (
        f"a {kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else f"a {kind.__name__}"
    )


def _not_a_mapping(pipeline: str, operation: str, data: Any, inputs: Sequence[Input]) -> str:
    names = [node.name for node in inputs]
    if len(names) == 1:
        hint = f" With its one input, pass {{{names[0]!r}: data}}."
    else:
        hint = f" Expected keys {names}."
    return (
        f"Pipeline {pipeline!r}.{operation}() takes a mapping of input name to array (a dict, a "
        f"megatron source's batch) or a pandas DataFrame; got {_describe(data)}.{hint}"
    )


def _check_stream(pipeline: str, batches: Any, operation: str) -> None:
    """A DataError for a single dataset (or anything else not iterable) given as a stream."""
    single = isinstance(batches, Mapping | np.ndarray | str | bytes) or (
        hasattr(batches, "columns") and hasattr(batches, "iloc")
    )
    if single or not isinstance(batches, Iterable):
        whole = operation.removesuffix("_generator")
        raise DataError(
            f"Pipeline {pipeline!r}.{operation}() takes an iterable of batches (a list of mappings "
            f"of input name to array, a megatron batch source); got {_describe(batches)}. For one "
            f"dataset, use {whole}(data) or pass [data]."
        )


class _FrameColumns:
    """A DataFrame's columns by input name; grouped inputs stack their columns."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def read(self, node: Input) -> np.ndarray:
        from megatron.io.frames import column_array

        names = node.columns or [node.name]
        if any(name not in self.frame.columns for name in names):
            raise KeyError(node.name)
        if node.columns is None:
            return column_array(self.frame[node.name])
        return np.column_stack([column_array(self.frame[c]) for c in names])

    def __iter__(self) -> Iterator[str]:
        return iter(map(str, self.frame.columns))


def _missing_input(pipeline: str, node: Input, columns: Any, plan: Plan, operation: str) -> MissingInputError:
    import difflib

    given = [str(k) for k in columns]
    expected = {n.name for n in plan.inputs}
    # a given key that no input expects may be a typo of this input's name
    lowered = {key.lower(): key for key in given if key not in expected}
    wanted = node.name.lower()
    close = [key for key in lowered if _one_edit_apart(wanted, key)][:1]
    close = close or difflib.get_close_matches(wanted, list(lowered), n=1, cutoff=0.6)
    hint = f" Did you mean {node.name!r} for the given key {lowered[close[0]]!r}?" if close else ""
    return MissingInputError(
        f"Pipeline {pipeline!r}.{operation}() needs input {node.name!r}, which the data does not "
        f"have.{hint} Expected keys {[n.name for n in plan.inputs]}; got {given}."
    )


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter dropped, added or changed, or two neighbours swapped:
    the typos that a similarity ratio can miss in short names."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(diffs) == 2:
            i, j = diffs
            return j == i + 1 and a[i] == b[j] and a[j] == b[i]
        return len(diffs) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _check_count(name: str, value: int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise DataError(f"{name} must be a positive integer; got {value!r}.")


class _Passes:
    """The passes ``fit_generator`` makes over its batches, to say why when a source runs dry."""

    def __init__(self, pipeline: str, stages: list[list[StatefulLayer]], epochs: int, one_shot: bool) -> None:
        self.pipeline = pipeline
        self.n_stages = len(stages)
        self.epochs = epochs
        self.iterative_stages = sum(1 for stage in stages if any(layer.iterative for layer in stage))
        self.total = sum(
            (epochs if any(layer.iterative for layer in plain) else 1 if plain else 0)
            + sum(epochs if layer.iterative else 1 for layer in stage if layer.drives_its_own_loop())
            for stage in stages
            for plain in [[layer for layer in stage if not layer.drives_its_own_loop()]]
        )
        self.one_shot = one_shot
        self.done = 0

    def why(self) -> str:
        stages = f"{self.n_stages} stage{'s' if self.n_stages != 1 else ''} of stateful layers"
        if not self.iterative_stages or self.epochs == 1:
            return f"{stages}, one pass each"
        return f"{stages}; {self.epochs} epochs for the {self.iterative_stages} with an iterative layer"

    def finished(self, drawn: int) -> None:
        """A pass ended after ``drawn`` batches: none at all is an error saying why."""
        if drawn == 0:
            raise DataError(self.ran_out(0, None))
        self.done += 1

    def ran_out(self, drawn: int, steps: int | None) -> str:
        asked = f"; {steps} were asked for per pass" if steps is not None else ""
        message = (
            f"Pipeline {self.pipeline!r}.fit_generator(): the batch source ran out after {drawn} "
            f"batches{asked}, in pass {self.done + 1} of {self.total} ({self.why()})."
        )
        if self.one_shot:
            needed = f"{steps * self.total} batches in all" if steps is not None else "a new pass each time"
            return (
                f"{message} It is a one-shot iterator, which the passes draw from in turn, so it must "
                f"give {needed}: pass a list or a megatron source, which is read afresh for each pass."
            )
        if drawn == 0:
            return (
                f"{message} Each pass reads the data again: the source must give batches every time "
                "it is iterated (not an exhausted generator, not an empty table)."
            )
        return message


def _take(
    batches: Iterable[Data], steps: int | None, pipeline: str, passes: _Passes | None = None
) -> Iterator[Data]:
    """One pass: ``steps`` batches from ``batches`` (all of them when None)."""
    iterator = iter(batches)
    if steps is None:
        yield from iterator
        return
    for drawn in range(steps):
        try:
            yield next(iterator)
        except StopIteration:
            if passes is not None:
                raise DataError(passes.ran_out(drawn, steps)) from None
            raise DataError(
                f"Pipeline {pipeline!r}: the batch source ran out after {drawn} batches; "
                f"{steps} were asked for per pass."
            ) from None
