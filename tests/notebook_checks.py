"""What every committed notebook must be: valid, without outputs, one cell tagged `parameters`
(papermill injects there), and thin (each cell calls the library; no functions defined inline)."""

from __future__ import annotations

from pathlib import Path

import nbformat


def clean_notebook(path: Path) -> tuple[set[str], str]:
    """Assert the notebook at `path` is committed clean with one parameters cell and no `def`;
    returns (the parameter names, all code cells' source) for notebook-specific checks."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"clear {path.name}'s outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    names = {line.split("=")[0].strip() for line in tagged[0].source.splitlines()
             if "=" in line and not line.startswith("#")}
    source = "\n".join(c.source for c in code)
    assert "def " not in source, f"{path.name}: keep the notebook thin (functions belong in lib/)"
    return names, source
