"""Where the project lives, so that relative paths mean the same from any working directory.

JupyterLab starts a notebook's kernel in the notebook's folder (``notebooks/``), `make` runs in the
repository root. Relative paths the project writes (``results``, the runs' ``data/synthetic/...``
roots) are relative to the root, so every reader resolves them with `resolve`:

1. an absolute path is used as it is;
2. a relative path that exists from the working directory is used from there (``../results`` from
   ``notebooks/`` keeps working);
3. otherwise it is taken relative to the project root (`project_root`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: environment variable that names the project root explicitly (overrides the search)
ROOT_ENV = "RIGHTFOCUS_ROOT"


def _is_root(folder: Path) -> bool:
    """A rightfocus checkout: its pyproject.toml names the project."""
    marker = folder / "pyproject.toml"
    try:
        return marker.is_file() and 'name = "rightfocus"' in marker.read_text(errors="replace")
    except OSError:
        return False


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The project root: ``$RIGHTFOCUS_ROOT`` if set, else the nearest folder at or above `start`
    (default: the working directory) holding rightfocus's pyproject.toml, else the checkout the
    library was imported from, else the working directory."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_root(folder):
            return folder
    checkout = Path(__file__).resolve().parents[2]  # lib/rightfocus/project.py -> the repository
    return checkout if _is_root(checkout) else here


def resolve(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """`path` as an absolute path: itself if absolute, from the working directory if it exists there,
    else under `root` (default: `project_root`)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if p.exists():
        return p.resolve()
    return Path(root).resolve() / p if root is not None else project_root() / p


def candidates(path: str | os.PathLike, *roots: str | os.PathLike) -> list[Path]:
    """Where a relative `path` may live: the working directory, the project root, then `roots` (in
    order, duplicates dropped); an absolute path is its only candidate."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return [p]
    found: list[Path] = []
    for base in (Path.cwd(), project_root(), *(Path(r) for r in roots)):
        c = (base.resolve() / p)
        if c not in found:
            found.append(c)
    return found


def portable(path: str | os.PathLike) -> str:
    """`path` (resolved as `resolve` does) relative to the project root when it lies inside it, else
    absolute: what a run's config stores, so that the run reads the same data from any working
    directory and in a moved clone."""
    full, root = resolve(path), project_root()
    try:
        return str(full.relative_to(root))
    except ValueError:
        return str(full)
