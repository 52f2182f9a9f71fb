"""Conformance suites for layers, metrics, storage backends and batch sources, shared by the
built-ins and third-party plugins.

A plugin's own tests describe a few cases and run every check on them::

    import pytest
    from megatron.testing import LayerCase, layer_checks

    CASES = [LayerCase(MyLayer, (np.random.random((20, 3)),))]

    @pytest.mark.parametrize("check", layer_checks())
    @pytest.mark.parametrize("case", CASES, ids=str)
    def test_my_layers_conform(check, case):
        check(case)

``layer_checks()`` and ``metric_checks()`` include a save and reload round trip;
``source_case(MySource, ...)`` and ``storage_case(MyStorage, url)`` point the source and
storage suites at a class. With ``hypothesis`` installed (the ``testing`` extra),
``layer_properties()`` runs a layer on generated batches, ``megatron.testing.batches`` holds
the strategies for layer inputs and ``megatron.testing.strategies`` those for storage;
``answer_properties()`` (``megatron.testing.layer_answers``, with the strategies of
``megatron.testing.layer_strategies``) checks the answers a layer gives: its own rows
accepted and equal to a reference, one pass for one-pass statistics whatever the epochs, no
NaN learned unseen, identical outputs after a save and reload, non-mappings and inputs
outside their spec refused.

Installing megatron-core also installs a pytest plugin (``megatron.testing.plugin``) with the
``megatron_plugins`` fixture, which registers plugin objects for one test only, and the
``megatron_distribution`` fixture, which installs a plugin distribution for one test only.
"""

from typing import Any

from megatron.testing.cases import source_case, storage_case
from megatron.testing.layers import LayerCase, layer_checks
from megatron.testing.metrics import MetricCase, metric_checks
from megatron.testing.sources import SourceCase, source_checks
from megatron.testing.storage import StorageCase, storage_checks

__all__ = [
    "LayerCase",
    "MetricCase",
    "SourceCase",
    "StorageCase",
    "answer_properties",
    "layer_checks",
    "layer_properties",
    "metric_checks",
    "source_case",
    "source_checks",
    "storage_case",
    "storage_checks",
]


def __getattr__(name: str) -> Any:
    # the property checks need hypothesis, which only the 'testing' extra installs
    if name == "layer_properties":
        from megatron.testing.batches import layer_properties

        return layer_properties
    if name == "answer_properties":
        from megatron.testing.layer_answers import answer_properties

        return answer_properties
    if name in ("batches", "strategies", "layer_strategies", "layer_answers"):
        import importlib

        return importlib.import_module(f"megatron.testing.{name}")
    raise AttributeError(f"module 'megatron.testing' has no attribute {name!r}")
