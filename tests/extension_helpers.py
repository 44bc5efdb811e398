"""Shared pieces of the extension tests (tests/test_extend_*.py):
a plug-in module written into a temporary folder and loaded the way users load theirs, a fingerprint of
the library's source tree, and a trained MG baseline + guided pair in a results tree."""

from __future__ import annotations

import hashlib
import importlib
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import rightfocus
from rightfocus.registry import load_plugins

LIB = Path(rightfocus.__file__).parent


def lib_fingerprint() -> str:
    """SHA-256 over every file under lib/rightfocus (path and bytes), byte caches left out."""
    h = hashlib.sha256()
    for path in sorted(LIB.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(LIB)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def import_toy(folder: Path, module: str, source: str, monkeypatch) -> ModuleType:
    """Write `source` as ``folder/<module>.py`` and import it (fresh) with `folder` on the path for
    the test's duration (`monkeypatch`); the caller unregisters what it registered."""
    (folder / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop(module, None)
    return importlib.import_module(module)


def load_plugin(folder: Path, module: str, source: str) -> None:
    """Write `source` as ``folder/<module>.py`` and load it as a plug-in (`load_plugins`)."""
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    try:
        assert load_plugins(module) == [module]
    finally:
        sys.path.remove(str(folder))


def train_pair(config, results: Path) -> tuple[str, str]:
    """Train `config` (a baseline) and its Energy / IxG input-guided run from it; returns both run ids."""
    from rightfocus.training.runner import train_run

    train_run(config, results, progress=False)
    guided = replace(config, method="ixg", tap="input", loss="energy", lam=1.0, init_from=config.run_id)
    train_run(guided, results, progress=False)
    return config.run_id, guided.run_id
