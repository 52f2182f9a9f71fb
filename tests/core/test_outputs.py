"""``Outputs``: by name and by position, the index, outputs kept as the columns of a table, and
as a DataFrame (with any number of rows, none included)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron.errors import ConfigError, UnknownOutputError
from megatron.outputs import Outputs
from megatron.testing.strategies import key_sets, output_schemas, output_values


def test_outputs_by_name_and_position_with_a_default_index():
    outputs = Outputs(["a", "b"], [np.arange(3), np.ones((3, 2))])
    assert outputs["a"] is outputs[0]
    assert outputs[1].shape == (3, 2)
    assert outputs.index.tolist() == [0, 1, 2]
    assert list(outputs) == ["a", "b"] and len(outputs) == 2
    with pytest.raises(UnknownOutputError, match=r"No output named 'c'; the outputs are \['a', 'b'\]"):
        outputs["c"]
    with pytest.raises(UnknownOutputError, match="position 2 is out of range"):
        outputs[2]


def test_an_index_given_as_a_list_becomes_an_array():
    outputs = Outputs(["a"], [np.arange(2)], ["x", "y"])
    assert isinstance(outputs.index, np.ndarray)
    assert outputs.index.tolist() == ["x", "y"]


def test_outputs_from_a_table_are_its_columns():
    table = np.arange(12.0).reshape(4, 3)
    outputs = Outputs.from_table(["a", "b", "c"], table, [10, 11, 12, 13])
    assert outputs["b"].tolist() == [1.0, 4.0, 7.0, 10.0]
    assert outputs[2].tolist() == table[:, 2].tolist()
    assert outputs["c"] is outputs[2]  # made once
    assert dict(outputs.items()).keys() == {"a", "b", "c"}
    assert "b" in outputs and "d" not in outputs
    assert repr(outputs) == "Outputs({'a': float64(4,), 'b': float64(4,), 'c': float64(4,)})"
    assert Outputs.from_table(["a", "b", "c"], table).index.tolist() == [0, 1, 2, 3]
    with pytest.raises(UnknownOutputError):
        outputs["d"]


def test_outputs_become_a_dataframe_one_column_per_element():
    pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    table = np.arange(12.0).reshape(4, 3)
    frame = Outputs.from_table(["a", "b", "c"], table, [10, 11, 12, 13]).to_frame()
    assert frame["a"].tolist() == [0.0, 3.0, 6.0, 9.0] and frame.index.tolist() == [10, 11, 12, 13]
    wide = Outputs(["m"], [np.arange(8.0).reshape(2, 2, 2)]).to_frame()
    assert list(wide.columns) == ["m[0, 0]", "m[0, 1]", "m[1, 0]", "m[1, 1]"]


def test_outputs_of_no_rows_become_a_frame_with_the_same_columns_and_dtypes():
    pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    arrays = [np.arange(8, dtype=np.int8).reshape(2, 2, 2), np.array(["ab", "c"]), np.ones((2, 0))]
    full = Outputs(["m", "s", "none"], arrays, np.array(["x", "y"])).to_frame()
    empty = Outputs(["m", "s", "none"], [a[:0] for a in arrays], np.array(["x", "y"])[:0]).to_frame()
    assert list(empty.columns) == list(full.columns) == ["m[0, 0]", "m[0, 1]", "m[1, 0]", "m[1, 1]", "s"]
    assert len(empty) == 0
    pd.testing.assert_frame_equal(empty, full.iloc[:0])


def test_outputs_whose_columns_would_share_a_name_are_refused():
    pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    outputs = Outputs(["a", "a[0]"], [np.zeros((2, 1)), np.ones(2)])
    with pytest.raises(ConfigError, match=r"outputs 'a' and 'a\[0\]' both give a column named 'a\[0\]'"):
        outputs.to_frame()


@st.composite
def outputs_and_rows(draw: st.DrawFn) -> tuple[tuple[str, ...], list[np.ndarray], np.ndarray | None]:
    schema = draw(output_schemas())
    rows = draw(st.integers(0, 4))
    values = draw(output_values(schema, rows))
    keys = draw(st.none() | key_sets(min_size=rows, max_size=rows).map(np.asarray))
    # an empty list of keys has no type: numpy makes it float, so keys come as arrays here
    index = None if keys is None else keys.astype(np.int64) if not len(keys) else keys
    return tuple(o.name for o in schema), [values[o.name] for o in schema], index


@settings(max_examples=60, deadline=None)
@given(drawn=outputs_and_rows())
def test_the_frame_of_the_first_rows_is_the_first_rows_of_the_frame(drawn):
    pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    names, arrays, index = drawn
    first = lambda k: Outputs(names, [a[:k] for a in arrays], None if index is None else index[:k])  # noqa: E731
    try:
        full = first(len(arrays[0])).to_frame()
    except ConfigError:  # two outputs whose columns would share a name: refused with any rows
        for k in range(len(arrays[0])):
            with pytest.raises(ConfigError):
                first(k).to_frame()
        return
    for k in range(len(arrays[0]) + 1):
        pd.testing.assert_frame_equal(first(k).to_frame(), full.iloc[:k], obj=f"the first {k} rows")
