"""The README's tutorial runs as written, and its set-up commands are where CI finds them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_tutorial_code_runs(tmp_path, monkeypatch):
    code = re.search(r"## A short tutorial\n\n```python\n(.+?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})


def test_set_up_commands_are_found_by_ci():
    for name, needle in (("demo", "examples/getting_started.py"), ("test", "pytest")):
        command = subprocess.run(
            [sys.executable, str(ROOT / ".ci" / "readme_command.py"), name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert needle in command


def test_getting_started_example_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "getting_started.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "outputs[0].shape     (1000,)" in result.stdout
    assert "one_output[0].shape  (1,)" in result.stdout
