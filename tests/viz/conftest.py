"""Rendering needs Graphviz's ``dot`` program. CI installs it (``.ci/run``) and a missing one
fails there; elsewhere the rendering tests are skipped with a note on how to install it."""

import os
import shutil

import pytest


@pytest.fixture
def graphviz() -> None:
    if shutil.which("dot"):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("Graphviz's dot is not installed: CI must run the drawing tests")
    pytest.skip("Graphviz is not installed (apt-get install graphviz): the drawing tests need it")
