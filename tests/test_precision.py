"""bf16 autocast (`training.runtime`), checked on CPU autocast: the guided step runs
for every model kind and tap with its forward, attribution (double backward) and loss in bf16, and
stays close to fp32; an AIM step likewise; a fixed checkpoint evaluated under bf16 has metrics within
stated tolerances of fp32; RunConfig's precision and performance options at their defaults leave run ids unchanged, and the defaults
per device are as documented."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from rightfocus.data.encoding import encode
from rightfocus.runs.config import RunConfig
from rightfocus.models import build_model
from rightfocus.training.mg_task import localisation_step
from rightfocus.training.runtime import Runtime, resolve_precision, resolve_runtime

torch.set_num_threads(1)

CPU = torch.device("cpu")
BF16 = Runtime(CPU, precision="bf16")
KIND_METHODS = [("vanilla", "ixg"), ("vanilla", "gradcam"), ("xdnn", "intgrad"), ("bcos", "bcos")]
TAPS = ["input", "mid1", "mid2", "mid3", "final"]

#: bounds of bf16 vs fp32 on this CPU (torch 2.14, random-init tiny models, 32 px, 4 images, train-mode
#: batch norm). Measured: per-image loss relative error <= 0.067 (xdnn mid3); cosine of the parameter
#: gradient of BCE + loc: B-cos >= 0.996, X-DNN >= 0.976, vanilla IxG >= 0.935, vanilla GradCAM >= 0.72
#: (mid1; the ReLU of GradCAM switches where bf16 moves a map across 0). End to end, metrics of a
#: checkpoint: METRIC_ATOL below.
LOSS_RTOL = 0.1
GRAD_COSINE_MIN = {"bcos": 0.99, "xdnn": 0.95, "vanilla": 0.6}


def _batch(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(kind, "tiny", 5).train()
    if kind == "xdnn":  # Fixup starts branches and classifier at zero: every map would be 0
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(seed)
    images = encode(torch.rand(4, 3, 32, 32, generator=g), model.input_encoding)
    labels = (torch.rand(4, 5, generator=g) > 0.5).float()
    targets = torch.tensor([0, 3, 1, 4])
    labels[torch.arange(4), targets] = 1
    masks = torch.zeros(4, 32, 32)
    masks[0, 2:20, 5:30] = 1
    masks[1, 10:32, 0:12] = 1
    masks[2, 0:9, 0:9] = 1
    masks[3, 16:, 16:] = 1
    guided = torch.tensor([True, True, False, True])
    return model, images, labels, targets, masks, guided


class _ConvDtypes(TorchDispatchMode):
    """Records the dtypes of the convolutions' outputs (forward and attribution)."""

    def __enter__(self) -> set[torch.dtype]:
        self.dtypes: set[torch.dtype] = set()
        super().__enter__()
        return self.dtypes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.convolution.default:
            self.dtypes.add(out.dtype)
        return out


def _step(model, images, labels, targets, masks, guided, tap, method, rt: Runtime):
    with rt.autocast(), _ConvDtypes() as dtypes:
        logits, per_image = localisation_step(model, images, targets, masks, tap, method, "energy", guided=guided)
        bce = F.binary_cross_entropy_with_logits(logits.float(), labels)
    loss = bce + per_image.sum()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])
    return dtypes, per_image, flat


@pytest.mark.parametrize("tap", TAPS)
@pytest.mark.parametrize("kind,method", KIND_METHODS)
def test_guided_step_under_bf16_autocast_is_close_to_fp32(kind, method, tap):
    model, images, labels, targets, masks, guided = _batch(kind)
    ref_dtypes, ref_loc, ref_grad = _step(model, images, labels, targets, masks, guided, tap, method,
                                          Runtime(CPU))
    dtypes, loc, grad = _step(model, images, labels, targets, masks, guided, tap, method, BF16)
    assert dtypes == {torch.bfloat16} and ref_dtypes == {torch.float32}  # convolutions ran in bf16 ...
    assert loc.dtype == torch.float32  # ... the loss in fp32
    assert torch.isfinite(loc).all() and torch.isfinite(grad).all()
    assert loc[2] == 0 and ref_loc[2] == 0  # not guided
    torch.testing.assert_close(loc, ref_loc, rtol=LOSS_RTOL, atol=1e-3 * float(ref_loc.detach().abs().max()) + 1e-6)
    assert ref_grad.norm() > 0
    cosine = F.cosine_similarity(grad, ref_grad, dim=0)
    assert cosine > GRAD_COSINE_MIN[kind], f"{kind} {method} {tap}: gradient cosine bf16 vs fp32 {float(cosine):.4f}"


def test_aim_step_under_bf16_autocast_is_close_to_fp32():
    from rightfocus.experiments.aim_grids import all_configs
    from rightfocus.training.aim_loop import build_optimizer, build_run_model, train_one_epoch

    cfg = next(c for c in all_configs("demo", "data") if c.model_kind == "aim")
    cfg = replace(cfg, epochs=1, extra={**cfg.extra, "anneal_start": 0, "anneal_epochs": 1})
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.rand(4, 3, cfg.image_size, cfg.image_size, generator=g),
             "labels": torch.tensor([0, 1, 0, 1]), "boxes": [torch.zeros(0, 5)] * 4}
    stats = {}
    for name, rt in (("fp32", Runtime(CPU)), ("bf16", BF16)):
        torch.manual_seed(0)
        model = build_run_model(cfg, 2)
        optimizer, scheduler = build_optimizer(model, cfg, 1)
        stats[name] = train_one_epoch(model, [batch], optimizer, scheduler, cfg, 1, rt)
    for k in ("train_loss", "train_cls_loss"):
        assert stats["bf16"][k] == pytest.approx(stats["fp32"][k], rel=0.05), k
    assert stats["bf16"]["train_mask_loss"] == pytest.approx(stats["fp32"]["train_mask_loss"], abs=0.02)


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    from rightfocus.data.synthetic import make

    return make("voc2007", tmp_path_factory.mktemp("voc"), seed=0, n_train=24, n_val=6, n_test=24,
                min_size=36, max_size=40)


#: bf16 vs fp32 metrics of the same checkpoint, 24 test images. Measured |difference| (vanilla IxG /
#: GradCAM, B-cos input / final, X-DNN mid2): F1 0, mAP <= 0.0072, EPG <= 0.0036, IoU <= 0.0013; F1 can
#: flip with one logit near 0, hence its looser bound
METRIC_ATOL = {"f1": 0.03, "map": 0.02, "epg": 0.01, "iou": 0.01}


@pytest.mark.parametrize("kind,tap,method", [("vanilla", "input", "ixg"), ("bcos", "final", "bcos"),
                                             ("xdnn", "mid2", "intgrad")])
def test_fixed_checkpoint_metrics_under_bf16_are_within_tolerance(voc, tmp_path, kind, tap, method):
    """A briefly trained checkpoint, evaluated (classification + EPG / IoU) in fp32 and in bf16."""
    from rightfocus.data import collate, load_dataset
    from rightfocus.training.mg_task import evaluate, train_one_epoch

    train = load_dataset("voc2007", voc, "train", size=32)
    torch.manual_seed(0)
    model = build_model(kind, "tiny", train.num_classes)
    loader = torch.utils.data.DataLoader(train, batch_size=8, collate_fn=collate)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        train_one_epoch(model, loader, optimizer, None, torch.Generator().manual_seed(0), CPU)
    test = torch.utils.data.DataLoader(load_dataset("voc2007", voc, "test", size=32), batch_size=8,
                                       collate_fn=collate)
    ref = evaluate(model, test, [(tap, method)], runtime=Runtime(CPU))[(tap, method)]
    got = evaluate(model, test, [(tap, method)], runtime=BF16)[(tap, method)]
    assert ref["pairs"] == got["pairs"] > 0
    for k, tol in METRIC_ATOL.items():
        assert got[k] == pytest.approx(ref[k], abs=tol), f"{kind} {k}: bf16 {got[k]:.4f} fp32 {ref[k]:.4f}"


def test_new_options_keep_run_ids_and_precision_enters_when_explicit():
    cfg = RunConfig()
    assert set(cfg.result_fields()).isdisjoint({"precision", "channels_last", "cudnn_benchmark", "num_workers"})
    for knob in ({"channels_last": True}, {"cudnn_benchmark": False}, {"num_workers": 4}):
        assert replace(cfg, **knob).run_id == cfg.run_id
    ids = {replace(cfg, precision=p).run_id for p in ("auto", "fp32", "bf16")}
    assert len(ids) == 3
    assert RunConfig.from_dict({**cfg.to_dict(), "precision": "bf16"}).precision == "bf16"
    with pytest.raises(ValueError, match="precision"):
        RunConfig(precision="fp16")


def test_defaults_per_device():
    cfg = RunConfig(model_kind="vanilla", arch="resnet50")
    cpu = resolve_runtime(cfg, CPU)
    assert (cpu.precision, cpu.channels_last, cpu.num_workers, cpu.pin_memory) == ("fp32", False, 0, False)
    assert resolve_precision("bf16", CPU) == "bf16" and resolve_precision("fp32", CPU) == "fp32"
    assert resolve_runtime(replace(cfg, num_workers=3, channels_last=True), CPU).loader_options() == {
        "num_workers": 3, "pin_memory": False, "persistent_workers": True}
    if torch.cuda.is_available():  # the GPU defaults (checked where a GPU is present)
        gpu = resolve_runtime(cfg, torch.device("cuda"))
        assert gpu.pin_memory and gpu.channels_last and gpu.num_workers >= 1
        assert gpu.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
        vit = resolve_runtime(replace(cfg, model_kind="bcos", arch="vit_b16"), torch.device("cuda"))
        assert not vit.channels_last
