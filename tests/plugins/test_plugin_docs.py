"""The plugin guide holds the whole contract, where an author looks: each section says what it
must, and the contract sections each have an example that runs (tests/integration/test_docs.py
runs every block). The template ships an example of each kind of plugin object."""

import inspect
import re
from pathlib import Path

import pytest

from megatron.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
TEMPLATE = ROOT / "examples" / "megatron-plugin-template"

SECTIONS = {
    "The plugin module": [
        "megatron.plugins.hookimpl",
        "by keyword",
        "module:attribute",
        "sys.modules",
        "import megatron",
    ],
    "When a plugin fails": [
        "PluginLoadWarning",
        "dropped whole",
        "does not import",
        "does not pass",
        "not a megatron hook",
        "raises",
        "`megatron plugins`",
        "FAILED",
        "PluginConflictError",
        "adapt_layer",
    ],
    "Choosing plugins": ["MEGATRON_PLUGINS", "MEGATRON_DISABLE_PLUGINS", "distribution names", "`core`"],
    "The layer contract": [
        "read-only",
        "LayerInputError",
        "output_spec",
        "Spec",
        "SpecError",
        "empty batch",
        "same names",
        "self.metadata",
        "iterative = True",
        "epochs",
        "filters_rows = True",
        "stream_stateful = True",
        "n_outputs",
        "n_targets",
    ],
    "The metric contract": ["initial_state()", "update(state", "merge(state", "result(state)"],
    "The source contract": [
        "megatron.io.BatchSource",
        "one_pass()",
        "re-iterable",
        "Batch(arrays, index)",
        "distinct",
        "batch_size",
        "register_sources",
    ],
    "Storage backends": [
        "open(url, name, version)",
        "write(index, outputs, fingerprint)",
        "register_storage",
        "adapt_storage",
        "storage_case",
    ],
    "Serializers": [
        "register_serializers",
        "claims(obj)",
        "save(obj, archive, prefix)",
        "load(meta, archive, options)",
        "audit(meta, archive)",
        "pickle",
    ],
    "Testing your plugin": [
        "layer_checks()",
        "metric_checks()",
        "source_checks()",
        "storage_checks()",
        "layer_properties()",
        "megatron_plugins",
        "megatron_distribution",
    ],
}
WITH_EXAMPLE = [
    "The plugin module",
    "The layer contract",
    "The metric contract",
    "The source contract",
    "Storage backends",
    "Serializers",
]


def sections():
    text = GUIDE.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.mark.parametrize("title", SECTIONS)
def test_each_section_says_what_an_author_needs(title):
    found = sections()
    assert title in found, f"docs/plugins.md has no section '## {title}'"
    missing = [term for term in SECTIONS[title] if term not in found[title]]
    assert not missing, f"'## {title}' does not mention {missing}"


@pytest.mark.parametrize("title", WITH_EXAMPLE)
def test_each_contract_has_an_example_that_runs(title):
    body = sections()[title]
    blocks = re.findall(r"(?:^<!--\s*(fragment)[^\n]*\n)?^```(python|py)\n", body, flags=re.M)
    assert any(not fragment for fragment, _ in blocks), f"'## {title}' has no runnable example"


def test_every_hook_is_in_the_guide():
    text = GUIDE.read_text()
    hooks = [
        name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "megatron_spec")
    ]
    assert [hook for hook in hooks if hook not in text] == []


def test_the_template_has_an_example_of_each_kind_and_the_tests_that_show_them():
    plugin = (TEMPLATE / "src" / "megatron_template" / "plugin.py").read_text()
    for hook in ("register_layers", "register_metrics", "register_sources"):
        assert f"def {hook}(register" in plugin
    layers = (TEMPLATE / "src" / "megatron_template" / "layers.py").read_text()
    assert "class MaxAbsScale(StatefulLayer)" in layers and "class WeightedSum(StatelessLayer)" in layers
    assert (
        "class NpzSource(BatchSource)" in (TEMPLATE / "src" / "megatron_template" / "sources.py").read_text()
    )
    tests = {path.name: path.read_text() for path in (TEMPLATE / "tests").glob("test_*.py")}
    assert (
        "layer_checks()" in tests["test_conformance.py"] and "source_checks()" in tests["test_conformance.py"]
    )
    assert "load_pipeline(path)" in tests["test_save_and_load.py"]
    assert "megatron_distribution" in tests["test_broken_sibling.py"]
