"""AimOptions: AIM's typed per-run settings, read from RunConfig.extra (defaults, validation, and the
``extra`` form the grids write, which run ids hash)."""

from __future__ import annotations

import dataclasses

import pytest

from rightfocus.aim_options import AIM_EXTRA_DEFAULTS, AimOptions
from rightfocus.experiments import aim_grids
from rightfocus.runs.config import RunConfig


def test_defaults_are_the_papers_and_the_grids_view_of_them():
    opts = AimOptions()
    assert (opts.stage, opts.tau, opts.anneal_epochs, opts.topdown_lr, opts.randaugment) == (1, 0.25, 100, 0.01, (3, 9))
    assert aim_grids.AIM_EXTRA_DEFAULTS is AIM_EXTRA_DEFAULTS
    assert AIM_EXTRA_DEFAULTS["randaugment"] == [3, 9] and AIM_EXTRA_DEFAULTS["blocks"] is None
    assert "paper_arch" not in AIM_EXTRA_DEFAULTS and "weights" not in AIM_EXTRA_DEFAULTS
    assert AimOptions.from_extra(AIM_EXTRA_DEFAULTS) == opts


@pytest.mark.parametrize("profile", ["demo", "paper", "rehearsal"])
def test_every_grid_config_loads_and_keeps_its_extra_form(profile):
    for config in aim_grids.all_configs(profile, "data"):
        opts = AimOptions.from_config(config)
        extra = {k: v for k, v in opts.as_extra().items() if k in config.extra}
        assert extra == config.extra, config.run_id
        assert opts.tau is None or isinstance(opts.tau, float)


def test_values_override_defaults_with_their_types():
    cfg = aim_grids.make_config("demo", "cub", "convnext_tiny", stage=2, tau=None, direction="bottom_up",
                                blocks=[1, 2, 3], topdown_lr=1)
    opts = AimOptions.from_config(cfg)
    assert (opts.stage, opts.tau, opts.blocks, opts.topdown_lr) == (2, None, (1, 2, 3), 1.0)
    assert isinstance(opts.topdown_lr, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.stage = 3  # type: ignore[misc]


def test_unknown_key_names_it_and_the_valid_ones():
    message = r"unknown AIM extra key\(s\) \['stagee'\]; valid: \[.*'stage'.*\]"
    with pytest.raises(ValueError, match=message):  # refused when the config is loaded, before any training
        RunConfig(paper="aim", model_kind="aim", dataset="cub", extra={"stagee": 2})
    with pytest.raises(ValueError, match=message):
        AimOptions.from_extra({"stagee": 2})
    with pytest.raises(ValueError, match="AIM extra 'stage' must be"):
        RunConfig.from_dict({"paper": "aim", "model_kind": "aim", "dataset": "cub", "extra": {"stage": "two"}})
    RunConfig(paper="mg", dataset="voc2007", extra={"stagee": 2})  # model guidance's extra is not AIM's


@pytest.mark.parametrize("key,value", [("stage", "2"), ("stage", 1.5), ("aux_losses", 1), ("tau", "0.3"),
                                       ("randaugment", [3]), ("blocks", [1, "2"]), ("gradcam_at", None)])
def test_wrong_type_is_an_error_naming_the_key(key, value):
    with pytest.raises(ValueError, match=f"AIM extra {key!r} must be"):
        AimOptions.from_extra({key: value})
