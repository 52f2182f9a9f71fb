"""Print the README's set-up command named on the command line (``demo`` or ``test``).

The README marks each with ``<!-- command: NAME -->`` before its code block, so CI runs
exactly what a new user copies.
"""

import re
import sys
from pathlib import Path

readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
name = sys.argv[1]
match = re.search(rf"<!-- command: {re.escape(name)} -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
if match is None:
    sys.exit(f"README.md has no '<!-- command: {name} -->' block")
print(match.group(1).strip())
