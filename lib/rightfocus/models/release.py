"""The papers' release checkpoints: which file is which model, stand-in files in the exact release
layouts, and a check that a file loads and fits.

`RELEASES` maps each release file name (as downloaded; drop it into WEIGHTS_ROOT unchanged) to the
model it holds (`build_model` kind and arch, 1000 ImageNet classes), its project and where to get it.
`write_standin` writes a random-valued file in that file's exact layout (key names, ``0.`` /
``module.`` prefixes, X-DNN's ``.pth.tar`` dict, torchvision's legacy DenseNet keys, perturbed norm
statistics), built from our own models and torchvision only (the ``bcos`` package is not needed), so
a paper-shape rehearsal runs without the real downloads. `check_weights_file` says what, if
anything, keeps a file from loading.

Layouts (as the release files are published): B-cos-v2 files are plain state dicts of the ``bcos``
package's models (uncentred batch norms carry ``running_mean`` beside ``running_var``; the logit bias
is not stored); the ViT and model guidance's B-cos ResNet-50 were saved inside a sequential wrapper
(every key prefixed ``0.``); X-DNN's file is ``{"epoch", "arch", "state_dict", "best_acc1",
"optimizer"}`` with DataParallel's ``module.`` prefix; torchvision's pre-2018 files (ResNet V1,
DenseNet) have no ``num_batches_tracked`` and DenseNet uses the legacy ``norm.1`` key names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .registry import build_model
from .weights import match_state_dict, read_state_dict, resolve_weights

_BCOS_V2 = "https://github.com/B-cos/B-cos-v2/releases/download/v0.0.1-weights"
_TORCHVISION = "https://download.pytorch.org/models"


@dataclass(frozen=True)
class ReleaseFile:
    """One release checkpoint: what it holds and where it comes from."""

    kind: str  # `build_model` kind
    arch: str  # `build_model` arch
    num_classes: int  # classes of the file's head (ImageNet-1k)
    project: str  # who released it
    url: str  # where to download it (the project's link, as text)
    layout: str  # "state_dict" | "prefix0" (keys "0.*") | "xdnn_tar" | "torchvision" | "torchvision_legacy"
    note: str = ""


RELEASES: dict[str, ReleaseFile] = {
    "resnet_18-68b4160fff.pth": ReleaseFile(
        "bcos", "resnet18", 1000, "B-cos-v2 (Boehle et al.)", f"{_BCOS_V2}/resnet_18-68b4160fff.pth", "state_dict"),
    "resnet_50-ead259efe4.pth": ReleaseFile(
        "bcos", "resnet50", 1000, "B-cos-v2 (Boehle et al.)", f"{_BCOS_V2}/resnet_50-ead259efe4.pth", "state_dict"),
    "resnet_50_long-ef38a88533.pth": ReleaseFile(
        "bcos", "resnet50", 1000, "B-cos-v2 (Boehle et al.)", f"{_BCOS_V2}/resnet_50_long-ef38a88533.pth",
        "state_dict", "trained longer (bcos_final_long)"),
    "densenet_121-b8daf96afb.pth": ReleaseFile(
        "bcos", "densenet121", 1000, "B-cos-v2 (Boehle et al.)", f"{_BCOS_V2}/densenet_121-b8daf96afb.pth",
        "state_dict"),
    "densenet_121_long-5175461597.pth": ReleaseFile(
        "bcos", "densenet121", 1000, "B-cos-v2 (Boehle et al.)", f"{_BCOS_V2}/densenet_121_long-5175461597.pth",
        "state_dict", "trained longer (bcos_final_long)"),
    "bcos_vitc_s_patch1_14-cf55c88f0c.pth": ReleaseFile(
        "bcos", "vit_s", 1000, "B-cos-v2 (Boehle et al.)", f"{_BCOS_V2}/bcos_vitc_s_patch1_14-cf55c88f0c.pth",
        "prefix0", "B-cos ViT-S with conv stem (vitc_s_patch1_14)"),
    "resnet_50-f46c1a4159.pth": ReleaseFile(
        "bcos", "resnet50", 1000, "model guidance (Rao et al. 2023)",
        "https://nextcloud.mpi-klsb.mpg.de/index.php/s/3Yk6p86SBBFYSBN/download (save as resnet_50-f46c1a4159.pth; "
        "the link in the model guidance repository's weights download script)",
        "prefix0", "the B-cos ResNet-50 the model guidance paper started from"),
    "xfixup_resnet50_model_best.pth.tar": ReleaseFile(
        "xdnn", "resnet50", 1000, "X-DNN (Hesse et al. 2021, fast axiomatic attribution)",
        "https://download.visinf.tu-darmstadt.de/data/2021-neurips-fast-axiomatic-attribution/models/"
        "xfixup_resnet50_model_best.pth.tar", "xdnn_tar", "X-Fixup ResNet-50"),
    "resnet50-0676ba61.pth": ReleaseFile(
        "vanilla", "resnet50", 1000, "torchvision (ResNet50_Weights.IMAGENET1K_V1)",
        f"{_TORCHVISION}/resnet50-0676ba61.pth", "torchvision_legacy"),
    "resnet101-63fe2227.pth": ReleaseFile(
        "vanilla", "resnet101", 1000, "torchvision (ResNet101_Weights.IMAGENET1K_V1)",
        f"{_TORCHVISION}/resnet101-63fe2227.pth", "torchvision_legacy"),
    "densenet121-a639ec97.pth": ReleaseFile(
        "vanilla", "densenet121", 1000, "torchvision (DenseNet121_Weights.IMAGENET1K_V1)",
        f"{_TORCHVISION}/densenet121-a639ec97.pth", "torchvision_legacy", "legacy key names (norm.1 -> norm1)"),
    "convnext_tiny-983f1562.pth": ReleaseFile(
        "vanilla", "convnext_tiny", 1000, "torchvision (ConvNeXt_Tiny_Weights.IMAGENET1K_V1)",
        f"{_TORCHVISION}/convnext_tiny-983f1562.pth", "torchvision"),
}


def _release(file_name: str) -> ReleaseFile:
    if file_name not in RELEASES:
        raise ValueError(f"unknown release file {file_name!r}; known: {sorted(RELEASES)}")
    return RELEASES[file_name]


def _perturbed(state: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
    """Random values: running variances scaled by factors in [0.5, 2], running means random, 1-D
    affine parameters perturbed away from their init
    (so a loader that drops or swaps them changes the output); zero-initialised weights (Fixup's
    last convs and classifier) made random."""
    out = {}
    for key, value in state.items():
        v = value.detach().clone()
        if key.endswith("num_batches_tracked"):
            v.fill_(int(torch.randint(1000, 100000, (), generator=generator)))
        elif key.endswith("running_var"):
            v.mul_(torch.rand(v.shape, generator=generator) * 1.5 + 0.5)
        elif key.endswith("running_mean"):
            v.copy_(torch.randn(v.shape, generator=generator) * 0.2)
        elif v.dim() == 1 and key.endswith("weight"):
            v.copy_(torch.rand(v.shape, generator=generator) + 0.5)
        elif v.dim() == 1 and key.endswith("bias"):
            v.copy_(torch.randn(v.shape, generator=generator) * 0.1)
        elif v.is_floating_point() and v.dim() > 1 and not v.any():
            fan_in = v[0].numel()
            v.copy_(torch.randn(v.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        out[key] = v.contiguous()
    return out


def _upstream_state(release: ReleaseFile) -> dict[str, Tensor]:
    """The file's state dict without its wrapper (upstream key names), at random init."""
    if release.kind == "vanilla":
        from .backbones import BACKBONES

        return dict(BACKBONES[release.arch].build_net(release.num_classes).state_dict())
    model = build_model(release.kind, release.arch, release.num_classes)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if norms:  # running variances from one random batch, so activations keep their scale with depth
        for m in norms:
            m.momentum = 1.0
        x = torch.rand(2, 3, 64, 64)
        with torch.no_grad():
            model.train()(torch.cat([x, 1 - x], 1) if model.input_encoding == "bcos" else x)
        for m in norms:
            m.momentum = 0.1
    own = model.state_dict()
    return {up: own[ours] for up, ours in model.source_key_map.items()}


def _legacy_densenet_key(key: str) -> str:
    """``denselayerN.norm1.weight`` -> ``denselayerN.norm.1.weight`` (torchvision's 2017 files)."""
    head, _, leaf = key.rpartition(".")
    parent, _, module = head.rpartition(".")
    if "denselayer" in parent and module[:-1] in ("norm", "conv") and module[-1] in "12":
        return f"{parent}.{module[:-1]}.{module[-1]}.{leaf}"
    return key


def write_standin(file_name: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a random-valued stand-in for release file `file_name` in its exact layout.

    `path` is the file to write, or a directory (an existing one, or a name without a suffix; the
    file is then ``path/file_name``). Returns the written path. Deterministic in `seed`.
    """
    release = _release(file_name)
    target = Path(path)
    if target.is_dir() or not target.suffix:
        target = target / file_name
    torch.manual_seed(seed)  # the models' own init
    generator = torch.Generator().manual_seed(seed)
    state = _perturbed(_upstream_state(release), generator)
    obj: object
    if release.layout == "prefix0":
        obj = {f"0.{k}": v for k, v in state.items()}
    elif release.layout == "xdnn_tar":
        n = len(state)
        obj = {
            "epoch": 90,
            "arch": "xfixup_resnet50",
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "best_acc1": torch.tensor(76.0),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.0001, "momentum": 0.9, "dampening": 0,
                                                         "weight_decay": 0.0001, "nesterov": False,
                                                         "params": list(range(n))}]},
        }
    elif release.layout == "torchvision_legacy":
        obj = {_legacy_densenet_key(k): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    else:
        obj = state
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, target)
    return target


def check_weights_file(path: str | os.PathLike, kind: str, arch: str, num_classes: int | None = None) -> list[str]:
    """Problems that keep `path` from loading into ``build_model(kind, arch, ...)``; empty = it loads
    and fits. `num_classes` defaults to the release's (1000) for a known file name, else 1000; the
    head must then match too. Errors (missing file, a file that needs pickle, wrong layout) come
    back as readable lines, never raised."""
    name = Path(path).name
    release = RELEASES.get(name)
    problems = []
    if release is not None and (release.kind, release.arch) != (kind, arch):
        problems.append(f"{name} is the {release.project} release of kind={release.kind!r} arch={release.arch!r}, "
                        f"not kind={kind!r} arch={arch!r}")
    classes = num_classes or (release.num_classes if release else 1000)
    try:
        state = read_state_dict(resolve_weights(path))
        model = build_model(kind, arch, classes)
        _, fresh, fit = match_state_dict(model, state)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as err:
        return problems + [f"{type(err).__name__}: {line}" for line in str(err).splitlines() if line.strip()]
    problems += fit
    if fresh and not fit:
        problems.append(f"the head does not have {classes} classes: {fresh} differ in shape")
    return problems
