"""The guidance benchmark runs end to end (tiny models, one repetition) and writes its JSON schema.
Speed itself is measured by `make bench`, never asserted here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_guidance.py"


def test_quick_benchmark_writes_its_json(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_guidance", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", ["bench_guidance.py", "--out", str(tmp_path), "--quick", "--reps", "1"])
    try:
        bench.main()
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "bench_guidance.json").read_text())
    ratios = result["ratios"]
    for name in ("guided_final_over_unguided", "guided_input_over_unguided"):
        for entry in ratios[name].values():
            assert entry["value"] > 0 and isinstance(entry["met"], bool)
    assert ratios["pair_loop_over_all_classes"]["value"] > 0
    assert set(ratios["all_classes_strategy_speed"]) <= {"per_rank", "repeat", "vmap"}
    assert result["eval_s"] and all(v["pairs"] > 0 for v in result["eval_s"].values())
    reference = result["reference_comparison"]
    assert set(reference["ours_guided_over_unguided"]) == set(reference["reference"]["guided_over_unguided"])
