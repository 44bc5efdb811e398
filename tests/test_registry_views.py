"""The registries of model kinds, backbones and datasets are the one source of what the grids, the
figures and `rightfocus check` list: their views keep exactly the values the grids were written with
(so every run id stays), and a newly registered entry shows up where a view is live."""

from __future__ import annotations

import pytest

from rightfocus.check import resources
from rightfocus.data import DATASETS, DatasetSpec, load_dataset
from rightfocus.experiments import aim_grids, grids
from rightfocus.runs import config
from rightfocus.figures import mg_common, style
from rightfocus.models import BACKBONES, MODEL_KINDS, register_kind


def test_kind_views_keep_their_values_and_order():
    assert tuple(config.MODEL_KINDS) == ("vanilla", "xdnn", "bcos", "aim")
    native = {"vanilla": "ixg", "xdnn": "intgrad", "bcos": "bcos"}
    assert config.NATIVE_METHOD == mg_common.MAIN_METHOD == resources.NATIVE == native
    assert list(config.NATIVE_METHOD) == list(native)
    assert mg_common.MODEL_KINDS == ("vanilla", "xdnn", "bcos")
    assert style.MODEL_LABELS == {"vanilla": "Vanilla", "xdnn": "X-DNN", "bcos": "B-cos", "aim": "AIM"}
    assert [k for k in MODEL_KINDS if MODEL_KINDS[k].bias_free] == ["xdnn"]


def test_pretrained_file_views_keep_their_values_and_order():
    assert list(grids.PAPER_WEIGHTS.items()) == [
        (("vanilla", "resnet50"), "resnet50-0676ba61.pth"),
        (("xdnn", "resnet50"), "xfixup_resnet50_model_best.pth.tar"),
        (("bcos", "resnet50"), "resnet_50-f46c1a4159.pth"),
        (("bcos", "densenet121"), "densenet_121-b8daf96afb.pth"),
        (("bcos", "vit_s"), "bcos_vitc_s_patch1_14-cf55c88f0c.pth"),
    ]
    assert list(aim_grids.PRETRAINED_FILES.items()) == [
        ("convnext_tiny", "convnext_tiny-983f1562.pth"), ("resnet50", "resnet50-0676ba61.pth"),
        ("resnet101", "resnet101-63fe2227.pth")]
    from rightfocus.models.release import RELEASES

    for (kind, arch), name in grids.PAPER_WEIGHTS.items():  # every named file is a known release of that model
        assert (RELEASES[name].kind, RELEASES[name].arch) == (kind, arch)
    for arch, name in aim_grids.PRETRAINED_FILES.items():
        assert (RELEASES[name].kind, RELEASES[name].arch) == ("vanilla", arch) and BACKBONES[arch].buildable


def test_aim_dataset_view_keeps_its_values_and_the_registry_unpacks_like_it():
    assert list(aim_grids.DATASETS.items()) == [
        ("cub", ("cub", "cub", {})),
        ("waterbirds95", ("waterbirds", "waterbirds", {"confounder": 95})),
        ("waterbirds100", ("waterbirds", "waterbirds", {"confounder": 100})),
        ("travelingbirds", ("travelingbirds", "travelingbirds", {})),
        ("imagenet100", ("imagefolder", "imagenet100", {})),
        ("hardimagenet", ("hardimagenet", "hardimagenet", {})),
        ("imagewoof", ("imagefolder", "imagewoof", {})),
    ]
    for name, triple in aim_grids.DATASETS.items():  # the training loop unpacks registry entries the same way
        loader, folder, options = DATASETS[name]
        assert (loader, folder, options) == triple and DATASETS[name][0] == loader
    from rightfocus.data.registry import ALIASES, LOADERS

    assert list(LOADERS) == ["voc2007", "coco2014", "waterbirds", "cub", "travelingbirds", "imagefolder",
                             "hardimagenet"]
    assert ALIASES == {"voc": "voc2007", "coco": "coco2014"}
    assert [d for d in DATASETS if DATASETS[d].multi_label] == ["voc2007", "coco2014"]


def test_a_variant_loads_with_its_preset_and_the_callers_options_win(tmp_path):
    calls = []

    def reader(root, split, **options):
        calls.append((str(root), split, options))
        return "a dataset"

    with DATASETS.temporarily("_fmt", DatasetSpec("_fmt", reader)), \
            DATASETS.temporarily("_fmt7", DatasetSpec("_fmt7", loader="_fmt", options={"k": 7, "j": 1})):
        assert load_dataset("_fmt7", tmp_path, "val", j=2) == "a dataset"
    assert calls == [(str(tmp_path), "val", {"k": 7, "j": 2})]
    with pytest.raises(ValueError, match="unknown dataset '_fmt7'"):
        load_dataset("_fmt7", tmp_path, "val")


def test_a_registered_kind_is_a_valid_run_config_value():
    with pytest.raises(ValueError, match="model_kind"):
        config.RunConfig(model_kind="_mykind")
    register_kind("_mykind", MODEL_KINDS["vanilla"].builder, label="Mine", native_method="ixg")
    try:
        assert config.RunConfig(model_kind="_mykind").model_kind == "_mykind"
        assert MODEL_KINDS["_mykind"].label == "Mine"
    finally:
        MODEL_KINDS.unregister("_mykind")
