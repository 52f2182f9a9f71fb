"""The README's tutorial runs as written, and its set-up commands are where CI finds them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    tutorial = README[README.index("## A short tutorial") : README.index("## Development")]
    return re.findall(r"```python\n(.+?)```", tutorial, re.S)


def test_tutorial_code_runs(tmp_path, monkeypatch):
    import keras  # the tutorial's model is a Keras CNN

    from megatron.demo import make_model

    monkeypatch.chdir(tmp_path)
    namespace = {"model": make_model()}
    keras.utils.set_random_seed(0)
    for block in python_blocks():
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["outputs"][0].shape == (1000, 2)
    assert namespace["one_output"][0].shape == (1, 2)
    assert (tmp_path / "megatron.db").exists()


def test_set_up_commands_are_found_by_ci():
    for name, needle in (("demo", "examples/getting_started.py"), ("test", "pytest")):
        command = subprocess.run(
            [sys.executable, str(ROOT / ".ci" / "readme_command.py"), name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert needle in command
