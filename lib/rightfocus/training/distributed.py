"""One run on several processes (GPUs): DDP through ``torchrun``.

    torchrun --nproc_per_node 4 -m rightfocus train CONFIG.yaml

The engine reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (set by torchrun) and starts the process
group (NCCL on CUDA, gloo on CPU). What each process does:

- data: ``config.batch_size`` is the GLOBAL batch. Every rank draws the same global order from the
  run's seeded "data" generator (exactly the order of a one-process run) and takes its contiguous part
  of each global batch (`ShardedBatchSampler`); the random positive class of each image is drawn for
  the whole global batch from the shared "classes" generator and each rank keeps its rows. So the
  images and targets of every step are those of the one-process run, and the generators' states are
  the same on every rank: a checkpoint resumes under any world size.
- the step: the model is wrapped in DDP; the guided step (``autograd.grad(create_graph=True)`` w.r.t.
  an activation, then ONE backward of BCE + lambda * loc) is the pattern DDP supports: the attribution
  gradient touches no parameter's ``.grad``, and the final backward through the second-order graph
  reduces each parameter's gradient once. Losses are weighted so that DDP's gradient average equals
  the gradient of the one-process loss (BCE: mean over the global batch; loc: sum over it). Batch
  norm normalises with each rank's own part of the batch (SyncBatchNorm has no double backward), so
  models with batch norm match the one-process run only approximately.
- evaluation: each rank scores a contiguous shard of the val / test set; the per-image and per-pair
  values (logits, labels, EPG, IoU curves, ...) are gathered in rank order before the metrics are
  computed, so F1 / mAP / EPG / IoU are those of the whole set (= one process, up to round-off).
- files: rank 0 holds the run lock and writes config, checkpoints, metrics and ``done``; the others
  wait at barriers. Checkpoints hold the unwrapped model's weights, the optimiser state and the RNG
  states: nothing depends on the world size.
"""

from __future__ import annotations

import collections
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import BatchSampler, RandomSampler, Sampler

from rightfocus.models.taps import TappedModel


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run: rank, world size, local rank (torchrun's environment)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_environ(cls) -> "DistEnv":
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        return cls(rank=int(env.get("RANK", "0")), world_size=world, local_rank=int(env.get("LOCAL_RANK", "0")),
                   local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(world))))


def setup(device: str) -> tuple[DistEnv, torch.device | None]:
    """Start the process group when launched by torchrun with WORLD_SIZE > 1 (once per process).
    Returns the environment and the device of this rank (``cuda:LOCAL_RANK``; None: use ``device``)."""
    env = DistEnv.from_environ()
    if env.world_size <= 1:
        return env, None
    cuda = device != "cpu" and torch.cuda.is_available() and not device.startswith("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=3))
    if dist.get_world_size() != env.world_size:
        raise RuntimeError(f"WORLD_SIZE={env.world_size} but the process group has {dist.get_world_size()} ranks")
    if cuda:
        torch.cuda.set_device(env.local_rank)
        return env, torch.device("cuda", env.local_rank)
    return env, torch.device("cpu")


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum of `t` over the ranks (in place; no host synchronisation)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_min(t: Tensor) -> Tensor:
    """Minimum of `t` over the ranks (in place; no host synchronisation)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t


def shard_range(n: int, rank: int, world_size: int) -> range:
    """Rank `rank`'s contiguous part of ``range(n)`` (sizes differ by at most one; rank order =
    original order)."""
    bounds = [len(c) for c in torch.arange(n).tensor_split(world_size)] if n else [0] * world_size
    start = sum(bounds[:rank])
    return range(start, start + bounds[rank])


class ShardedBatchSampler(Sampler[list[int]]):
    """Rank `rank`'s contiguous part of each global batch of the one-process run's order.

    The global order is `RandomSampler` with the run's generator, drawn lazily by `BatchSampler`
    exactly as a one-process DataLoader draws it (a capped epoch consumes the same random numbers).
    A global batch smaller than the world size is repeated cyclically so every rank has images.
    ``meta`` holds (global batch size, offset of this rank's part) of each yielded batch, in order:
    the training loop pops one per batch (the classes are drawn for the global batch).
    """

    def __init__(self, dataset: Any, batch_size: int, generator: torch.Generator, rank: int,
                 world_size: int) -> None:
        self.batches = BatchSampler(RandomSampler(dataset, generator=generator), batch_size, drop_last=False)
        self.rank, self.world_size = rank, world_size
        self.meta: collections.deque[tuple[int, int]] = collections.deque()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        self.meta.clear()
        for batch in self.batches:
            if len(batch) < self.world_size:
                batch = [batch[i % len(batch)] for i in range(self.world_size)]
            part = shard_range(len(batch), self.rank, self.world_size)
            self.meta.append((len(batch), part.start))
            yield [batch[i] for i in part]


class _ForwardTaps(nn.Module):
    """``forward`` = the model's ``forward_taps`` (so that DDP's forward runs the tapped pass)."""

    def __init__(self, model: TappedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, taps: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
        return self.model.forward_taps(x, list(taps))


class DistributedTapped(TappedModel):
    """A `TappedModel` whose passes go through DDP (gradient all-reduce in the final backward); the
    same modules and parameters as `model`, so `Guide` and the explanation mode work unchanged."""

    def __init__(self, model: TappedModel, device: torch.device) -> None:
        nn.Module.__init__(self)
        self.kind, self.input_encoding = model.kind, model.input_encoding
        self._tap_names = tuple(model.taps)
        ids = [device.index] if device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(_ForwardTaps(model), device_ids=ids)

    @property
    def taps(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._tap_names

    def forward_taps(self, x: Tensor, taps: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
        return self.ddp(x, tuple(taps))


def gather_lists(lists: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Concatenate each named list over the ranks in rank order (values moved to CPU first)."""
    local = {k: [v.cpu() if torch.is_tensor(v) else v for v in vs] for k, vs in lists.items()}
    parts = all_gather(local)
    return {k: [v for p in parts for v in p[k]] for k in lists}
