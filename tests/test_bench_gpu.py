"""The GPU benchmark's quick CPU mode runs (tiny models, 32 px) and writes its JSON schema: every
measurement has images/s (or names its error), bf16 attribution maps stay close to fp32, and the
summary's speed-ups are the ratios of the stored throughputs. Speed is never asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def _run(tmp_path: Path, *args: str) -> dict:
    bench = _bench()
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--out", str(tmp_path / "b.json"), *args]) == 0
    finally:
        torch.set_num_threads(threads)
    return json.loads((tmp_path / "b.json").read_text())


def _check(result: dict, modes: tuple[str, ...]) -> None:
    assert result["benchmark"] == "bench_gpu" and result["quick"] and result["modes"] == list(modes)
    assert result["environment"]["device"] == "cpu"
    for section in ("train", "eval"):
        for name, per_mode in result[section].items():
            assert set(per_mode) == set(modes), name
            for mode, entries in per_mode.items():
                for where, e in entries.items():
                    assert "error" not in e, (section, name, mode, where, e.get("error"))
                    assert e["images_per_s"] > 0 and e["step_ms"] > 0 and e["peak_mem_gib"] is None
                    assert e["images_per_s"] == pytest.approx(e["batch"] * 1000 / e["step_ms"], rel=0.02)
                    if section == "eval":
                        assert e["pairs"] >= e["batch"]  # every image has >= 1 ground-truth class
                        if mode != "fp32":
                            assert 0 < e["rel_err_vs_fp32"] < 0.3, (name, mode, where)  # bf16 != fp32, close
    fp32 = {k: v["fp32"] for k, v in result["train"].items()}
    for key, entry in result["summary"]["speedup_over_fp32"].items():
        name, tap, mode = key.split("/")
        want = result["train"][name][mode][tap]["images_per_s"] / fp32[name][tap]["images_per_s"]
        assert entry["value"] == pytest.approx(want, abs=1e-3)
        assert tap == "unguided" or entry["goal"] == ">= 2.0"


def test_quick_subset_writes_its_json(tmp_path):
    result = _run(tmp_path, "--only", "train/bcos_tiny_bcos", "--only", "eval/bcos", "--modes", "fp32,bf16_cl",
                  "--steps", "1", "--taps", "input")
    assert set(result["train"]) == {"bcos_tiny_bcos"} and set(result["eval"]) == {"bcos_tiny_bcos"}
    assert set(result["train"]["bcos_tiny_bcos"]["fp32"]) == {"unguided", "input"}
    assert set(result["eval"]["bcos_tiny_bcos"]["bf16_cl"]) == {"input"}
    _check(result, ("fp32", "bf16_cl"))
    assert set(result["summary"]["speedup_over_fp32"]) == {f"bcos_tiny_bcos/{t}/bf16_cl" for t in ("unguided", "input")}


@pytest.mark.slow
def test_quick_benchmark_covers_every_model_and_mode(tmp_path):
    result = _run(tmp_path, "--steps", "1")
    assert set(result["train"]) == {"vanilla_tiny_ixg", "xdnn_tiny_intgrad", "bcos_tiny_bcos",
                                    "bcos_tiny_vit_bcos", "aim_tiny"}
    assert set(result["eval"]) == {"vanilla_tiny_ixg", "xdnn_tiny_intgrad", "bcos_tiny_bcos"}
    _check(result, ("fp32", "bf16", "bf16_cl"))
