"""transform(cache=True): only rows not stored for the current fit are computed."""

import numpy as np

import megatron
from megatron import layers
from megatron.nodes import Input


def test_cache_computes_only_new_rows_and_never_serves_stale_ones(database_url):
    computed = []

    def count(v):
        computed.append(len(v))
        return v

    x = Input("x", (3,))
    scaled = layers.Whiten()(layers.Lambda(count)(x), "scaled")
    pipeline = megatron.Pipeline(x, scaled, name="cached", version="1", storage=database_url)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(1500, 3))
    keys = [f"row{i}" for i in range(1500)]
    pipeline.fit({"x": data[:1000]})
    computed.clear()

    first = pipeline.transform({"x": data[:1000]}, index=keys[:1000], cache=True)
    assert computed == [1000]
    shuffled = rng.permutation(1500)  # the same 1,000 keys and 500 new ones, in another order
    second = pipeline.transform({"x": data[shuffled]}, index=np.array(keys)[shuffled], cache=True)
    assert computed == [1000, 500]
    assert second.index.tolist() == np.array(keys)[shuffled].tolist()
    np.testing.assert_allclose(second["scaled"], pipeline.transform({"x": data[shuffled]})["scaled"])
    np.testing.assert_allclose(first["scaled"], second["scaled"][np.argsort(shuffled)][:1000])

    pipeline.fit({"x": data[500:]})  # a refit: the stored rows are stale
    computed.clear()
    third = pipeline.transform({"x": data}, index=keys, cache=True)
    assert computed[-1] == 1500
    np.testing.assert_allclose(third["scaled"], pipeline.transform({"x": data})["scaled"])
    assert not np.allclose(third["scaled"][:1000], first["scaled"])
