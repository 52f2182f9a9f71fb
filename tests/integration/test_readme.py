"""The README's set-up commands are where CI finds them (its code blocks run in test_docs.py)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_set_up_commands_are_found_by_ci():
    for name, needle in (("demo", "examples/getting_started.py"), ("test", "pytest")):
        command = subprocess.run(
            [sys.executable, str(ROOT / ".ci" / "readme_command.py"), name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert needle in command
        assert "pip install" not in command or "-e " in command or "-r requirements" in command
