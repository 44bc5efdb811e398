"""Adding an attribution method is one file: a toy module written to a temporary folder registers a
"gradient x sign" method; without any change under lib/, a guided model-guidance run trains and
evaluates with it, and the ``ext.sanity`` figure (which reads the method registry) explains with it.
Also: every registered single-pass method agrees between its entry points, and the captum / oracle
parity tests name every built-in method."""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from extension_helpers import import_toy, lib_fingerprint
from rightfocus.attributions import METHODS, TAP_METHODS, attribute, attribution_context, attribution_from_tap
from rightfocus.attributions.methods import ATTRIBUTION_METHODS, GUIDE_METHODS
from rightfocus.runs.config import FROM_INIT, RunConfig

TESTS = Path(__file__).parent
BUILT_IN = ("ixg", "intgrad", "gradcam", "bcos", "guided_backprop", "guided_gradcam")

TOY = '''
"""Gradient x sign: sum over channels of grad * sign(activation) (a toy method for the tests)."""
from rightfocus.attributions.methods import AttributionMethod, register_method

CALLS = []


@register_method
class GradientSign(AttributionMethod):
    name = "toy_gradsign"
    label = "Gradient x sign"
    every_kind = True  # shown for every model kind

    def combine(self, grad, activation):
        CALLS.append(bool(grad.requires_grad))
        return (grad * activation.sign()).sum(1)
'''

#: built-in method -> (test file, test function) comparing it with an independent oracle (captum, or
#: the completeness of B-cos contributions)
ORACLES = {
    "ixg": ("test_attributions.py", "test_ixg_input_equals_captum"),
    "intgrad": ("test_attributions.py", "test_riemann_intgrad_equals_captum_riemann_right_at_input"),
    "gradcam": ("test_attributions.py", "test_gradcam_equals_captum_with_interpolation"),
    "bcos": ("test_attributions_models.py", "test_bcos_contributions_sum_to_the_logit_minus_the_bias"),
    "guided_backprop": ("test_attributions.py", "test_guided_backprop_equals_captum_on_relu_net_with_inplace_relu"),
    "guided_gradcam": ("test_attributions.py", "test_guided_gradcam_equals_captum_on_relu_net"),
}



@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy method module, imported from a temporary folder; unregistered afterwards."""
    yield import_toy(tmp_path, "toy_method", TOY, monkeypatch)
    ATTRIBUTION_METHODS.unregister("toy_gradsign")
    sys.modules.pop("toy_method", None)


def test_the_views_keep_their_contents_and_order():
    assert tuple(METHODS) == BUILT_IN
    assert tuple(TAP_METHODS) == BUILT_IN[:4] == tuple(GUIDE_METHODS)
    from rightfocus.experiments import grids
    from rightfocus.runs import config
    from rightfocus.figures.ext_metrics import sanity_methods

    assert tuple(config.METHODS) == BUILT_IN[:4]
    assert dict(config.NATIVE_METHOD) == {"vanilla": "ixg", "xdnn": "intgrad", "bcos": "bcos"} == dict(grids.MODELS)
    assert sanity_methods() == {"vanilla": (("ixg", "input"), ("gradcam", "final")),
                                "xdnn": (("intgrad", "input"), ("gradcam", "final")),
                                "bcos": (("bcos", "input"), ("gradcam", "final"))}


def test_a_registered_method_appears_in_every_view(toy):
    from rightfocus.runs import config
    from rightfocus.figures.ext_metrics import sanity_methods

    for view in (METHODS, TAP_METHODS, GUIDE_METHODS, config.METHODS):
        assert "toy_gradsign" in view and list(view)[-1] == "toy_gradsign"
    assert all(pairs[-1] == ("toy_gradsign", "input") for pairs in sanity_methods().values())
    assert dict(config.NATIVE_METHOD) == {"vanilla": "ixg", "xdnn": "intgrad", "bcos": "bcos"}  # not native anywhere
    RunConfig(method="toy_gradsign", tap="input", loss="energy", lam=1.0)  # validates


def test_a_method_in_a_file_trains_evaluates_and_renders_without_changes_to_lib(toy, tmp_path):
    from rightfocus.data.synthetic import make
    from rightfocus.runs import store
    from rightfocus.training.runner import train_run

    before = lib_fingerprint()
    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=6, n_val=4, n_test=4, min_size=24, max_size=28)
    cfg = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=1, lr=1e-3,
                    batch_size=6, image_size=16, seed=0, method="toy_gradsign", tap="input", loss="energy",
                    lam=1.0, init_from=FROM_INIT)
    rdir = train_run(cfg, tmp_path / "results", progress=False)
    assert store.is_done(rdir)
    assert True in toy.CALLS  # the training step: a map in the graph (create_graph=True)
    rows = [json.loads(line) for line in (rdir / "metrics.jsonl").read_text().splitlines()]
    evaluated = {(r["split"], r["method"]) for r in rows if r["tap"]}
    assert {("val", "toy_gradsign"), ("test", "toy_gradsign")} <= evaluated
    assert all(0 <= r["epg"] <= 1 for r in rows if r["method"] == "toy_gradsign")

    # (b) ext.sanity reads the registry: the toy method is explained for every model family
    sys.path.insert(0, str(TESTS))
    from fake_results import write_checkpoints, write_fake_results

    from rightfocus.data import load_dataset
    from rightfocus.figures import RenderContext, render_all
    from rightfocus.figures.ext_metrics import sanity_curves

    k = len(load_dataset("voc2007", voc, "test", size=32)[0]["labels"])
    results = tmp_path / "fake"
    write_fake_results(results, groups=["voc-main"], data_roots={"voc2007": str(voc)}, image_size=32)
    assert write_checkpoints(results, "demo", "voc-main", num_classes=k) > 0
    toy.CALLS.clear()
    curves = sanity_curves(RenderContext("demo", results))
    assert curves and all(any(name.startswith("toy_gradsign@input") for name in per) for per in curves.values())
    assert toy.CALLS and not any(toy.CALLS)  # evaluation maps: no graph kept
    out = tmp_path / "out"
    assert render_all("demo", results, only=["ext.sanity"], out=out).placeholders == {}
    assert (out / "ext.sanity.png").stat().st_size > 5000
    assert lib_fingerprint() == before


@pytest.mark.parametrize("method", [m for m in BUILT_IN if ATTRIBUTION_METHODS[m].single_pass])
def test_every_single_pass_method_agrees_between_from_tap_and_attribute(method):
    """For each registered single-pass method, on a model it is exact for: the map from one forward pass
    equals `attribute` at the tap, and with create_graph it is differentiable w.r.t. the parameters."""
    from rightfocus.models import build_model

    m = ATTRIBUTION_METHODS[method]
    kind = next((k for k in ("vanilla", "xdnn", "bcos") if m.shown_for(k)), "vanilla")
    torch.manual_seed(0)
    model = build_model(kind, "tiny", 3).double().eval()
    with torch.no_grad():  # zero-initialised weights (X-Fixup's classifier) would give zero maps
        for w in model.parameters():
            if w.dim() > 1 and not w.any():
                w.normal_(0, 0.1)
    x = torch.rand(2, 6 if kind == "bcos" else 3, 16, 16, dtype=torch.float64)
    targets = torch.tensor([0, 2])
    with attribution_context(model, method):
        logits, acts = model.forward_taps(x, ["mid2"])
        maps = attribution_from_tap(logits, acts["mid2"], targets, method, create_graph=True)
    torch.testing.assert_close(maps.detach(), attribute(model, x, targets, method, "mid2", upsample=False))
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [g for g in torch.autograd.grad((maps ** 2).sum(), params, allow_unused=True) if g is not None]
    assert all(torch.isfinite(g).all() for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_every_built_in_method_has_an_oracle_parity_test():
    assert set(ORACLES) == set(BUILT_IN) == set(METHODS)
    for method, (file, name) in ORACLES.items():
        tree = ast.parse((TESTS / file).read_text())
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in functions, (method, file, name)
        source = ast.get_source_segment((TESTS / file).read_text(), functions[name])
        assert f'"{method}"' in source or method == "bcos" and "bcos" in source, (method, name)
