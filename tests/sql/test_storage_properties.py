"""Generated output schemas, written by one process, read back exactly by another; and a
pipeline's cache over outputs of mixed shapes."""

import subprocess
import sys
import textwrap

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.nodes import Input
from megatron.testing import strategies as gen
from megatron_sql import SQLStorage

READ_BACK = textwrap.dedent("""
    import sys
    import numpy as np
    from megatron_sql import SQLStorage
    url, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for run in range(count):
        out = SQLStorage(url, f"generated {run}", "v").read()
        np.savez(f"{folder}/{run}.npz", __index__=out.index, **{f"o{i}": out[n] for i, n in enumerate(out)})
""")


def test_generated_schemas_read_back_exactly_in_a_fresh_process(database_url, tmp_path):
    written = []

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), schema=gen.output_schemas(), keys=gen.key_sets(min_size=1, max_size=6))
    def write(data, schema, keys):
        outputs = data.draw(gen.output_values(schema, len(keys)))
        with SQLStorage(database_url, f"generated {len(written)}", "v") as storage:
            storage.write(keys, outputs)
        written.append((keys, outputs))

    write()
    subprocess.run(
        [sys.executable, "-c", READ_BACK, database_url, str(tmp_path), str(len(written))],
        check=True,
        capture_output=True,
    )
    for run, (keys, outputs) in enumerate(written):
        with np.load(tmp_path / f"{run}.npz", allow_pickle=False) as back:
            assert sorted(back["__index__"].tolist(), key=repr) == sorted(keys, key=repr)
            order = [keys.index(k) for k in back["__index__"].tolist()]
            for i, (name, array) in enumerate(outputs.items()):
                got = back[f"o{i}"]
                assert got.dtype.kind == array.dtype.kind, name
                np.testing.assert_array_equal(got, array[order], err_msg=name)


def test_cached_transform_of_a_scalar_and_an_array_output_of_one_dtype(database_url):
    x = Input("x", (3,))
    total = layers.Lambda(lambda v: v.sum(axis=1))(x, "total")
    doubled = layers.Lambda(lambda v: v * 2)(x, "doubled")
    pipeline = megatron.Pipeline(x, [total, doubled], name="mixed shapes", storage=database_url)
    data = {"x": np.arange(12.0).reshape(4, 3)}
    first = pipeline.transform(data, cache=True)
    again = pipeline.transform(data, cache=True)  # every row from storage
    np.testing.assert_array_equal(again["total"], first["total"])
    np.testing.assert_array_equal(again["doubled"], first["doubled"])
    assert SQLStorage(database_url, "mixed shapes").read(rows=["3"])["doubled"].tolist() == [
        [18.0, 20.0, 22.0]
    ]
