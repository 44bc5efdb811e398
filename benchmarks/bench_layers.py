"""Training-step time of model guidance per tap (Rao et al. 2023, Fig. 8 / R9: guidance at deeper layers
is cheaper): B-cos guided at Input, Mid1, Mid2, Mid3 and Final, measured side by side in ONE process,
interleaved (every variant once per round, so load changes hit all alike), median of the rounds, the
device named. Writes a dated record that `mg.fig8` draws its speed-up panel from:

    python benchmarks/bench_layers.py --record            # -> benchmarks/recorded/layer_speedup_<device>_<date>.json
    python benchmarks/bench_layers.py --out /tmp/b --quick # tiny model, seconds (the record is not touched)

Defaults: B-cos ResNet-50 (the paper's Fig. 8 model), 64 px, batch 8, Energy loss, 5 rounds, 1 CPU thread
(or the GPU with --device cuda, where --size 224 --batch 64 is the paper's step). Speed-up = step time
guided at the input / at the tap. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_guidance import _batch, _time, _train_step  # noqa: E402  (same step, same timer)

from rightfocus.models import build_model  # noqa: E402

TAPS = ("input", "mid1", "mid2", "mid3", "final")
RECORDED = Path(__file__).resolve().parent / "recorded"


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:  # the CPU's model name (Linux)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def measure(arch: str, size: int, batch: int, rounds: int, device: str) -> dict:
    """Median training-step seconds per tap (and unguided) of a B-cos `arch`, interleaved in one process."""
    torch.manual_seed(0)
    model = build_model("bcos", arch, 20).train().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, labels, masks = (t.to(device) for t in _batch(model, batch, size))

    def step(tap: str | None):
        def run() -> None:
            _train_step(model, optimiser, x, labels, masks, None if tap is None else "bcos", tap)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
        return run

    steps = {"unguided": step(None), **{t: step(t) for t in TAPS}}
    times = _time(steps, rounds)
    return {
        "model": f"B-cos {arch}", "size": size, "batch": batch, "loss": "energy", "rounds": rounds,
        "step_s": {k: round(v, 5) for k, v in times.items()},
        "speedup_vs_input": {t: round(times["input"] / times[t], 3) for t in TAPS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the dated record under benchmarks/recorded/")
    parser.add_argument("--out", type=Path, default=None, help="write bench_layers.json here instead")
    parser.add_argument("--quick", action="store_true", help="tiny model, 32 px (seconds; for tests)")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    if not args.record and args.out is None:
        parser.error("give --record (tracked record) or --out DIR")
    torch.set_num_threads(args.threads)
    arch, size, batch = ("tiny", 32, 4) if args.quick else (args.arch, args.size, args.batch)
    result = measure(arch, size, batch, args.rounds, args.device)
    today = datetime.date.today().isoformat()
    result = {"benchmark": "bench_layers", "date": today, "device": _device_name(args.device),
              "device_kind": "cuda" if args.device.startswith("cuda") else "cpu", "threads": args.threads,
              "torch": torch.__version__, "loadavg_at_start": list(os.getloadavg()),
              "method": "one process; every variant once per round (interleaved), 1 warm-up round; "
                        "median step time (forward, Energy loss at the tap, backward, Adam step)",
              **result}
    if args.record:
        path = RECORDED / f"layer_speedup_{result['device_kind']}_{today}.json"
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "bench_layers.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["speedup_vs_input"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
