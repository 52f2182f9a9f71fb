"""``Outputs``: by name and by position, the index, and outputs kept as the columns of a table."""

import numpy as np
import pytest

from megatron.errors import UnknownOutputError
from megatron.outputs import Outputs


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
