"""The Keras plugin's tests run where megatron-keras is installed (``tox -e keras``, ``all``)."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("megatron_keras", reason="needs megatron_keras: pip install -e packages/megatron-keras")
