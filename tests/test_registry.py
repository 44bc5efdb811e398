"""The generic `Registry` every concept uses (methods, losses, model kinds, backbones, datasets, papers)."""

from __future__ import annotations

import sys

import pytest

from rightfocus.registry import Registry, UnknownName, load_plugins


def test_register_lookup_and_order() -> None:
    reg: Registry[int] = Registry("widget", how_to_add="call WIDGETS.register(name, obj)")
    reg.register("b", 2)

    @reg.register("a")
    def a() -> int:
        return 1

    assert reg.names() == ("b", "a") and list(reg) == ["b", "a"] and len(reg) == 2
    assert reg["b"] == 2 and reg["a"] is a and "a" in reg and "c" not in reg
    with pytest.raises(UnknownName, match=r"unknown widget 'c'; choose one of \['b', 'a'\]; to add one, call"):
        reg["c"]
    with pytest.raises(ValueError):  # argument checks catch it as a ValueError ...
        reg["c"]
    with pytest.raises(KeyError):  # ... mapping-style code as a KeyError
        reg["c"]
    with pytest.raises(ValueError, match="registered already"):
        reg.register("b", 3)
    reg.register("b", 3, replace=True)
    assert reg["b"] == 3


def test_temporarily_restores() -> None:
    reg: Registry[str] = Registry("thing")
    reg.register("x", "old")
    with reg.temporarily("x", "new"), reg.temporarily("y", "tmp"):
        assert reg["x"] == "new" and reg["y"] == "tmp"
    assert reg["x"] == "old" and "y" not in reg


def test_load_plugins_from_env(tmp_path, monkeypatch) -> None:
    (tmp_path / "toy_plugin_mod.py").write_text("import builtins\nbuiltins._toy_plugin_loaded = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RIGHTFOCUS_PLUGINS", "toy_plugin_mod")
    assert "toy_plugin_mod" in load_plugins()
    assert load_plugins() == []  # once
    import builtins

    assert builtins._toy_plugin_loaded is True
    del builtins._toy_plugin_loaded
    sys.modules.pop("toy_plugin_mod", None)
    monkeypatch.setenv("RIGHTFOCUS_PLUGINS", "no_such_module_xyz")
    with pytest.raises(ImportError, match="no_such_module_xyz.*RIGHTFOCUS_PLUGINS"):
        load_plugins()
