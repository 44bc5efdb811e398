"""The conda environment and the pip constraints pin the same versions."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower()] = version.strip()
    return pins


def test_environment_yml_pins_equal_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = _constraints()
    pinned = [d for d in pip_deps if "==" in d]
    assert pinned, "environment.yml pins nothing"
    for dep in pinned:
        name, version = dep.split("==")
        assert pins.get(name.lower()) == version, f"{name}: environment.yml {version}, constraints.txt {pins.get(name.lower())}"


def test_every_declared_dependency_is_pinned():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = _constraints()
    missing = [d for d in declared if d.lower() not in pins]
    assert not missing, f"not pinned in constraints.txt: {missing}"


def test_cli_help_lists_subcommands(capsys):
    import pytest

    from rightfocus.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for sub in ("make-data", "train", "figures", "gallery"):
        assert sub in out
