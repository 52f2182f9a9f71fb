"""The core's built-in plugin, registered directly by the plugin manager (as pytest registers
its own plugins) and declared as the entry point ``core`` for tools that list entry points."""

from __future__ import annotations

from megatron.plugins.hookspecs import Register, hookimpl

LAYERS = {
    "megatron.layers.lambda_layer": ["Lambda"],
    "megatron.layers.image": ["RGBtoGrey", "RGBtoBinary", "Downsample", "Upsample", "ScalePixels"],
    "megatron.layers.missing": ["Impute", "SimpleImpute", "MissingIndicator"],
    "megatron.layers.numeric": [
        "Add", "Subtract", "ScalarMultiply", "ScalarAdd", "ElementWiseMultiply", "Divide", "StaticDot", "Dot", "Clip", "Log",
    ],
    "megatron.layers.scaling": ["Normalize", "Whiten", "MinMaxScale"],
    "megatron.layers.shaping": ["Cast", "AddDim", "Reshape", "Flatten", "Slice"],
    "megatron.layers.encoding": ["OneHotRange", "OneHotLabels"],
    "megatron.layers.joins": ["Concatenate", "SplitDict"],
    "megatron.layers.rows": ["TimeSeries", "Filter"],
    "megatron.layers.text": ["Lowercase", "Tokenize", "RemoveStopwords", "CountVectorize"],
}  # fmt: skip

METRICS = {
    "megatron.metrics.base": ["Metric"],
    "megatron.metrics.classification": ["Accuracy", "Precision", "Recall", "F1"],
    "megatron.metrics.regression": ["MeanSquaredError", "MeanAbsoluteError", "R2"],
}


@hookimpl
def register_layers(register: Register) -> None:
    for module, names in LAYERS.items():
        for name in names:
            register(name, f"{module}:{name}")


@hookimpl
def register_metrics(register: Register) -> None:
    for module, names in METRICS.items():
        for name in names:
            register(name, f"{module}:{name}")


@hookimpl
def register_sources(register: Register) -> None:
    for name in ("PandasData", "CSVData", "PandasGenerator", "CSVGenerator", "ArrayGenerator"):
        register(name, f"megatron.io.sources:{name}")
    for name in ("ParquetData", "ParquetGenerator", "from_parquet"):
        register(name, f"megatron.io.parquet:{name}")


@hookimpl
def register_storage(register: Register) -> None:
    register("memory", "megatron.storage.memory:MemoryStorage")


@hookimpl
def register_executors(register: Register) -> None:
    register("local", "megatron.execution.local:LocalExecutor")
    register("threads", "megatron.execution.threads:ThreadExecutor")
