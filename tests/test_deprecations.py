"""Names the registries replaced keep working with a DeprecationWarning that names the replacement."""

from __future__ import annotations

import pytest
import torch
import torchvision


def test_family_classes_build_the_backbone_cut():
    from rightfocus.models import vanilla

    net = torchvision.models.densenet121(num_classes=3)
    with pytest.warns(DeprecationWarning, match="VanillaModel"):
        model = vanilla.VanillaDenseNet(net)
    expected = vanilla.VanillaModel(net, "densenet121")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), expected.eval()(x))
    assert list(model.stages) == ["mid1", "mid2", "mid3", "final"]


def test_loss_style_table_and_deviation_providers():
    from rightfocus import figures
    from rightfocus.figures import style
    from rightfocus.papers import PAPERS

    with pytest.warns(DeprecationWarning, match="loss_style"):
        table = style.LOSS_STYLE
    assert list(table) == ["energy", "l1", "ppce", "rrr"] and table["rrr"]["label"] == style.loss_label("rrr")
    with pytest.warns(DeprecationWarning, match="demo_deviations"):
        providers = figures.DEVIATION_PROVIDERS
    assert list(providers) == list(PAPERS)
    assert providers["mg"]("mg.tab1") == PAPERS["mg"].demo_deviations("mg.tab1")


def test_paper_grid_becomes_a_paper():
    from rightfocus.experiments import makefile

    with pytest.warns(DeprecationWarning, match="Paper"):
        grid = makefile.PaperGrid("rightfocus.experiments.aim_grids", "notebooks/aim_train.ipynb", "aim-main")
    assert grid.key == "aim_grids" and grid.first_group == "aim-main"
    assert grid.grids.GROUPS == makefile.PAPERS["aim"].grids.GROUPS
