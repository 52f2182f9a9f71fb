"""The scikit-learn plugin's tests run where megatron-sklearn is installed (``tox -e sklearn``, ``all``)."""

import pytest

pytest.importorskip(
    "megatron_sklearn", reason="needs megatron_sklearn: pip install -e packages/megatron-sklearn"
)
