"""Guided-step and evaluation throughput on one GPU: fp32 vs bf16 autocast vs bf16 + channels_last.

Model guidance (Rao et al. 2023, Eq. (1), Sec. 3.5) at the paper's shapes: ResNet-50, 224 px, batch 64,
vanilla (IxG) / X-DNN (IntGrad) / B-cos at the input, mid2 and final taps (plus the unguided step);
the B-cos ViT-S at the same shape; AIM (Alshami et al. 2025, Eq. 7) on ConvNeXt-tiny at its batch
(512, 224 px). Evaluation: `attribute_all_classes` over every (image, ground-truth class) pair.
Per measurement: images/s, ms per step and peak GPU memory; per mode the speed-up over fp32.

The step is model guidance's training step (`rightfocus.training.mg_task.train_one_epoch`), written out here
from the public pieces (`attribution_context`, `forward_taps`, `attribution_from_tap` with
``create_graph=True``, `localisation_loss`, BCE, Adam) so that the modes can be switched locally:
bf16 = forward, attribution and loss inside ``torch.autocast(dtype=torch.bfloat16)`` (the double
backward runs through the autocast graph), backward and optimiser step outside; channels_last =
model and batch in ``torch.channels_last``. Losses stay on the device (no host sync per step).

    python benchmarks/bench_gpu.py --out benchmarks/out          # one H200: a few minutes
    python benchmarks/bench_gpu.py --out /tmp/b --quick          # CPU, tiny models, seconds

Numbers are measurements, not tests: the JSON records each ratio next to its goal (`GOALS`). Without a
CUDA device (and without --quick) the quick CPU version runs, and the JSON says so.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from rightfocus.attributions import attribute_all_classes, attribution_context, attribution_from_tap
from rightfocus.losses import active_area_loss, localisation_loss
from rightfocus.models import build_model

MODES = ("fp32", "bf16", "bf16_cl")
MG_CLASSES = 20  # VOC
AIM_CLASSES = 200  # CUB
#: the project's speed goals on a GPU (measured here, asserted nowhere); our fp32 step stands for the official code's,
#: which it matched on CPU (0.97-1.08x its time, benchmarks/recorded/bench_guidance_*)
GOALS = {
    "guided_speedup_over_fp32": (">=", 2.0),
    "input_over_mid2_step_time": (">=", 1.7),
}


@dataclass(frozen=True)
class Shapes:
    arch: str
    vit: str
    aim_arch: str
    size: int
    batch: int
    aim_size: int
    aim_batch: int
    steps: int
    warmup: int
    eval_reps: int


PAPER = Shapes("resnet50", "vit_s", "convnext_tiny", 224, 64, 224, 512, steps=8, warmup=2, eval_reps=4)
QUICK = Shapes("tiny", "tiny_vit", "tiny", 32, 4, 32, 8, steps=2, warmup=1, eval_reps=1)


def _progress(message: str) -> None:
    print(f"[bench_gpu {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- modes --------------------------------------------------------------------------------------
def _autocast(mode: str, device: torch.device) -> contextlib.AbstractContextManager:
    if mode == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _layout(mode: str, t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if mode == "bf16_cl" and t.dim() == 4 else t


@torch.no_grad()
def _nontrivial(model: torch.nn.Module) -> torch.nn.Module:
    """Give zero-initialised parameters (e.g. the X-DNN's last layer) small random values, so that
    logits, attributions and their bf16 error are not trivially zero at initialisation."""
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        if p.dim() > 1 and not p.any():
            p.copy_(torch.randn(p.shape, generator=g) * 0.01)
    return model


def _prepare(model: torch.nn.Module, mode: str, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if mode == "bf16_cl" else model


# ---- data ---------------------------------------------------------------------------------------
def mg_batch(encoding: str, n: int, size: int, device: torch.device, seed: int = 0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoded images, multi-hot labels (>= 1 class each) and one box mask per image."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    x = torch.cat([x, 1 - x], 1) if encoding == "bcos" else (x - 0.45) / 0.225
    labels = (torch.rand(n, MG_CLASSES, generator=g) < 0.05).float()
    labels[torch.arange(n), torch.randint(0, MG_CLASSES, (n,), generator=g)] = 1
    masks = torch.zeros(n, size, size)
    for i in range(n):
        y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
        masks[i, y0: y0 + size // 2, x0: x0 + size // 2] = 1
    return x.to(device), labels.to(device), masks.to(device)


# ---- steps --------------------------------------------------------------------------------------
def mg_step(model, optimiser, x, labels, masks, method: str | None, tap: str | None, mode: str,
            device: torch.device, gen: torch.Generator) -> torch.Tensor:
    """One guided step as the engine does it: ONE forward yielding logits and the tap, attribution of
    one random ground-truth class per image with ``create_graph=True``, BCE + 1e-3 * Energy (sum),
    backward outside the attribution context, Adam. Returns the loss (on the device)."""
    with _autocast(mode, device):
        if method is None:
            logits = model(x)
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
        else:
            targets = torch.multinomial(labels, 1, generator=gen)[:, 0]
            inp = x.detach().requires_grad_(tap == "input")
            with attribution_context(model, method):
                logits, acts = model.forward_taps(inp, [tap])
                maps = attribution_from_tap(logits, acts[tap], targets, method, create_graph=True)
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels) + \
                1e-3 * localisation_loss("energy", maps.float(), masks, reduction="sum")
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


def aim_step(model, optimiser, x, targets, mode: str, device: torch.device) -> torch.Tensor:
    """One AIM step (Eq. 7): cross-entropy of the final and per-stage logits (label smoothing 0.1)
    plus 6 * active-area loss (Eq. 6, tau 0.25), AdamW."""
    with _autocast(mode, device):
        out = model.forward_aim(x)
        loss = F.cross_entropy(out.logits.float(), targets, label_smoothing=0.1)
        for aux in out.stage_logits.values():
            loss = loss + F.cross_entropy(aux.float(), targets, label_smoothing=0.1)
        loss = loss + 6.0 * active_area_loss([m.float() for m in out.masks.values()], 0.25)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


# ---- measurement --------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _peak_memory(device: torch.device, out: dict[str, Any]) -> Iterator[None]:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield
    out["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def measure(step: Callable[[], Any], batch: int, steps: int, warmup: int, device: torch.device) -> dict[str, Any]:
    """images/s and ms per step over `steps` steps after `warmup` (cudnn autotuning, allocator)."""
    out: dict[str, Any] = {"batch": batch, "steps": steps}
    try:
        with _peak_memory(device, out):
            for _ in range(warmup):
                step()
            _sync(device)
            start = time.perf_counter()
            last = None
            for _ in range(steps):
                last = step()
            _sync(device)
            seconds = time.perf_counter() - start
        if isinstance(last, torch.Tensor) and last.numel() == 1 and not torch.isfinite(last).item():
            out["warning"] = "non-finite loss"
        out.update(images_per_s=round(batch * steps / seconds, 2), step_ms=round(1000 * seconds / steps, 2))
    except (RuntimeError, ValueError, NotImplementedError) as error:  # OOM, an op without bf16 / double backward
        out["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def mg_train(kind: str, arch: str, method: str, taps: list[str], sh: Shapes, device: torch.device,
             modes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """{mode: {tap or "unguided": measurement}} for one model."""
    res: dict[str, dict[str, Any]] = {}
    for mode in modes:
        _progress(f"train {kind} {arch} {sh.size}px b{sh.batch} {mode}: unguided + {taps}")
        torch.manual_seed(0)
        model = _prepare(_nontrivial(build_model(kind, arch, MG_CLASSES)), mode, device).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)
        x, labels, masks = mg_batch(model.input_encoding, sh.batch, sh.size, device)
        x = _layout(mode, x)
        gen = torch.Generator(device=device).manual_seed(0)
        res[mode] = {}
        for tap in ["unguided", *taps]:
            m, t = (None, None) if tap == "unguided" else (method, tap)
            res[mode][tap] = measure(lambda: mg_step(model, optimiser, x, labels, masks, m, t, mode, device, gen),
                                     sh.batch, sh.steps, sh.warmup, device)
        del model, optimiser
    return res


def aim_train(sh: Shapes, device: torch.device, modes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    res: dict[str, dict[str, Any]] = {}
    for mode in modes:
        _progress(f"train aim {sh.aim_arch} {sh.aim_size}px b{sh.aim_batch} {mode}")
        torch.manual_seed(0)
        model = _prepare(build_model("aim", sh.aim_arch, AIM_CLASSES, stage=1), mode, device).train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.05)
        g = torch.Generator().manual_seed(0)
        x = _layout(mode, ((torch.rand(sh.aim_batch, 3, sh.aim_size, sh.aim_size, generator=g) - 0.45) / 0.225).to(device))
        targets = torch.randint(0, AIM_CLASSES, (sh.aim_batch,), generator=g).to(device)
        res[mode] = {"stage1": measure(lambda: aim_step(model, optimiser, x, targets, mode, device),
                                       sh.aim_batch, sh.steps, sh.warmup, device)}
        del model, optimiser
    return res


def evaluation(kind: str, arch: str, method: str, layers: list[str], sh: Shapes, device: torch.device,
               modes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`attribute_all_classes` (every ground-truth class of every image) per mode and layer, with the
    relative L2 difference of the maps from fp32."""
    res: dict[str, dict[str, Any]] = {}
    torch.manual_seed(0)
    base = _nontrivial(build_model(kind, arch, MG_CLASSES)).eval()
    x, labels, _ = mg_batch(base.input_encoding, sh.batch, sh.size, device, seed=1)
    reference: dict[str, torch.Tensor] = {}
    for mode in modes:
        _progress(f"eval {kind} {arch} {method} {mode} at {layers}")
        model = _prepare(copy.deepcopy(base), mode, device).eval()
        xm = _layout(mode, x)
        res[mode] = {}
        for layer in layers:
            def run() -> torch.Tensor:
                with _autocast(mode, device):
                    return attribute_all_classes(model, xm, labels, method, layer)[0]
            entry = measure(run, sh.batch, sh.eval_reps, 1, device)
            if "error" not in entry:
                maps = run().float()
                entry["pairs"] = int(maps.shape[0])
                if mode == "fp32":
                    reference[layer] = maps
                elif layer in reference and reference[layer].norm() > 0:
                    ref = reference[layer]
                    entry["rel_err_vs_fp32"] = round(float((maps - ref).norm() / ref.norm()), 5)
            res[mode][layer] = entry
    return res


# ---- summary ------------------------------------------------------------------------------------
def _goal(name: str, value: float | None) -> dict[str, Any]:
    op, target = GOALS[name]
    met = None if value is None else (value >= target if op == ">=" else value <= target)
    return {"value": value, "goal": f"{op} {target}", "met": met}


def _ips(entry: dict[str, Any]) -> float | None:
    return entry.get("images_per_s")


def summarise(train: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Speed-up of each mode over fp32 per (model, tap), and input / mid2 step-time ratios."""
    speedups: dict[str, Any] = {}
    layer_ratio: dict[str, Any] = {}
    for name, per_mode in train.items():
        fp32 = per_mode.get("fp32", {})
        for mode, taps in per_mode.items():
            for tap, entry in taps.items():
                if mode != "fp32" and _ips(entry) and _ips(fp32.get(tap, {})):
                    value = round(_ips(entry) / _ips(fp32[tap]), 3)
                    speedups[f"{name}/{tap}/{mode}"] = _goal("guided_speedup_over_fp32", value) \
                        if tap != "unguided" else {"value": value}
            if _ips(taps.get("input", {})) and _ips(taps.get("mid2", {})):
                layer_ratio[f"{name}/{mode}"] = _goal("input_over_mid2_step_time",
                                                      round(_ips(taps["mid2"]) / _ips(taps["input"]), 3))
    return {"speedup_over_fp32": speedups, "input_over_mid2_step_time": layer_ratio}


def run(quick: bool, device: torch.device, modes: tuple[str, ...], only: list[str], steps: int | None,
        taps: tuple[str, ...] = ("input", "mid2", "final")) -> dict:
    sh = QUICK if quick else PAPER
    if steps:
        sh = Shapes(**{**sh.__dict__, "steps": steps})
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    env: dict[str, Any] = {"torch": torch.__version__, "device": str(device), "cpus": os.cpu_count(),
                           "threads": torch.get_num_threads(), "machine": platform.machine()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_mem_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                   tf32_cudnn=torch.backends.cudnn.allow_tf32)
    result: dict[str, Any] = {
        "benchmark": "bench_gpu", "quick": quick, "environment": env, "modes": list(modes),
        "shapes": sh.__dict__,
        "note": "images/s of one training step (forward + attribution with create_graph + loss + backward "
                "+ optimiser step) and of attribute_all_classes; peak_mem_gib = torch.cuda.max_memory_allocated",
        "train": {}, "eval": {},
    }
    taps = list(taps)
    layers = [t for t in ("input", "final") if t in taps] or ["final"]  # evaluation
    cases: list[tuple[str, str, Callable[[], dict]]] = [
        ("train", f"vanilla_{sh.arch}_ixg", lambda: mg_train("vanilla", sh.arch, "ixg", taps, sh, device, modes)),
        ("train", f"xdnn_{sh.arch}_intgrad", lambda: mg_train("xdnn", sh.arch, "intgrad", taps, sh, device, modes)),
        ("train", f"bcos_{sh.arch}_bcos", lambda: mg_train("bcos", sh.arch, "bcos", taps, sh, device, modes)),
        ("train", f"bcos_{sh.vit}_bcos", lambda: mg_train("bcos", sh.vit, "bcos", taps, sh, device, modes)),
        ("train", f"aim_{sh.aim_arch}", lambda: aim_train(sh, device, modes)),
        ("eval", f"vanilla_{sh.arch}_ixg", lambda: evaluation("vanilla", sh.arch, "ixg", layers, sh, device, modes)),
        ("eval", f"xdnn_{sh.arch}_intgrad", lambda: evaluation("xdnn", sh.arch, "intgrad", layers, sh, device, modes)),
        ("eval", f"bcos_{sh.arch}_bcos", lambda: evaluation("bcos", sh.arch, "bcos", layers, sh, device, modes)),
    ]
    for section, name, fn in cases:
        if only and not any(o in f"{section}/{name}" for o in only):
            continue
        t0 = time.perf_counter()
        result[section][name] = fn()
        _progress(f"{section}/{name}: {time.perf_counter() - t0:.0f} s")
    result["summary"] = summarise(result["train"])
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a .json file, or a directory for bench_gpu.json")
    parser.add_argument("--quick", action="store_true", help="tiny models at 32 px on CPU (seconds; for tests)")
    parser.add_argument("--device", default=None, help="default: cuda when available (cpu with --quick)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {MODES}")
    parser.add_argument("--only", action="append", default=[], metavar="SUBSTR",
                        help="only cases whose 'train/<name>' or 'eval/<name>' contains this (repeatable)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--taps", default="input,mid2,final", help="guided taps (evaluation: input and final among them)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (quick mode)")
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    bad = [m for m in modes if m not in MODES]
    if bad:
        parser.error(f"unknown mode(s) {bad}; use a subset of {list(MODES)}")
    quick = args.quick
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not quick else "cpu"))
    if device.type != "cuda" and not quick:
        _progress("no CUDA device: running the quick CPU version (tiny models); use a GPU for paper shapes")
        quick = True
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    taps = tuple(t for t in args.taps.split(",") if t)
    if not taps or any(t not in ("input", "mid1", "mid2", "mid3", "final") for t in taps):
        parser.error(f"--taps {args.taps!r}: give a comma-separated subset of input,mid1,mid2,mid3,final")
    result = run(quick, device, modes, args.only, args.steps, taps)
    path = args.out if args.out.suffix == ".json" else args.out / "bench_gpu.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {path} in {result['total_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
