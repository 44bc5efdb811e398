"""The runnable python blocks of the README and the docs/ pages: each is marked with ``<!-- runnable:
<test file> executes this block -->`` and executed as a user would paste it (a fresh interpreter, one
torch thread, the checkout's `lib/` importable)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


#: the Markdown files whose marked blocks are executed: the README and every page of docs/
def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def runnable_blocks(test_file: str) -> list[str]:
    """The python blocks the README and docs/ mark as executed by `test_file` (e.g. "tests/test_guide.py")."""
    marker = f"<!-- runnable: {test_file} executes this block -->"
    pattern = re.escape(marker) + r"\n```python\n(.*?)```"
    return [b for doc in documents() for b in re.findall(pattern, doc.read_text(), flags=re.S)]


def run_block(block: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `block` with ``python -c`` in `cwd` (temporary files there too)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(cwd),
               PYTHONPATH=os.pathsep.join([str(REPO / "lib"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", block], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
