"""How a run uses its hardware: numeric precision, memory format, loader workers, device copies and
the process group of a multi-GPU run. The engine resolves one `Runtime` per run from the
config's options and the device; tasks read it (``task.runtime``).

Defaults per device (``RunConfig`` fields left at "auto" / None):

============== ==================================== ==========================================
option         CUDA                                 CPU
============== ==================================== ==========================================
precision      bf16 autocast (fp32 if no bf16)      fp32 (the demo stays bit-identical)
channels_last  on for conv nets (off for ViTs)      off
cudnn_benchmark on                                  (n/a)
num_workers    min(8, cpus / local processes)       0
pin_memory     on (copies are non-blocking)         off
============== ==================================== ==========================================

bf16 autocast covers the forward pass, the attribution (``autograd.grad(create_graph=True)``, whose
graph is built under autocast) and the losses; maps and logits are cast to fp32 before losses and
metrics; parameters, optimiser state and gradients stay fp32 (no loss scaling needed for bf16).
Only ``precision`` changes results beyond round-off, so it alone enters a run's id (when not
"auto"); the others are hardware knobs (`runs.config.NON_RESULT_FIELDS`). Known limits:
``torch.compile`` and the fused attention kernels have no double backward (`Guide` runs attention
through the math kernel; the B-cos ViT computes attention explicitly).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, ContextManager

import torch
from torch import Tensor, nn

from rightfocus.data.encoding import encode
from rightfocus.runs.config import RunConfig

PRECISIONS = ("auto", "fp32", "bf16")


def full(t: Tensor) -> Tensor:
    """`t` in fp32 when autocast made it bf16 / fp16 (losses and metrics); other dtypes unchanged."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto": bf16 on CUDA devices that support it, else fp32; "fp32" / "bf16" as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not valid; use one of {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def is_conv_net(config: RunConfig) -> bool:
    """Whether channels_last helps: convolutional backbones (every arch but the ViTs)."""
    return "vit" not in str(config.arch).lower()


@dataclass(frozen=True)
class Runtime:
    """The resolved hardware options of one run (see the module docstring) and its process group."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    num_workers: int = 0
    pin_memory: bool = False
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files (config, checkpoints, metrics, done)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> ContextManager:
        """bf16 autocast on the run's device (forward, attribution, loss); a null context in fp32."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to(self, x: Tensor) -> Tensor:
        """A batch tensor on the device (non-blocking from pinned memory: no host synchronisation)."""
        return x.to(self.device, non_blocking=self.pin_memory)

    def inputs(self, images: Tensor, encoding: str) -> Tensor:
        """Images of a batch on the device, encoded for the model, in the run's memory format."""
        x = encode(self.to(images), encoding)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def prepare(self, model: nn.Module) -> nn.Module:
        """The model on the device in the run's memory format."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def loader_options(self) -> dict[str, Any]:
        """DataLoader keywords: workers (persistent across epochs) and pinned memory."""
        opts: dict[str, Any] = {"num_workers": self.num_workers, "pin_memory": self.pin_memory}
        if self.num_workers > 0:
            opts["persistent_workers"] = True
        return opts


def resolve_runtime(config: RunConfig, device: torch.device, rank: int = 0, world_size: int = 1,
                    local_world_size: int = 1) -> Runtime:
    """The `Runtime` of `config` on `device` (defaults per device: module docstring)."""
    cuda = device.type == "cuda"
    channels_last = config.channels_last if config.channels_last is not None else (cuda and is_conv_net(config))
    if config.num_workers is not None:
        workers = int(config.num_workers)
    else:
        workers = min(8, max(1, (os.cpu_count() or 1) // max(1, local_world_size))) if cuda else 0
    return Runtime(device=device, precision=resolve_precision(config.precision, device),
                   channels_last=bool(channels_last), num_workers=workers, pin_memory=cuda,
                   rank=rank, world_size=world_size)


def configure_backends(config: RunConfig, device: torch.device) -> None:
    """``torch.backends.cudnn.benchmark`` on CUDA (``config.cudnn_benchmark``; None: on): picks the
    fastest convolution algorithms for the run's fixed shapes."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark is not False
