"""notebooks/guide_your_model.ipynb: committed without outputs, parameterised, and it guides a
torchvision model through papermill (cwd notebooks/, as JupyterLab starts it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from notebook_checks import clean_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "guide_your_model.ipynb"


def test_notebook_is_committed_clean_and_parameterised():
    names, source = clean_notebook(NOTEBOOK)
    assert {"data_root", "layer", "method", "loss", "steps", "summary_path"} <= names
    assert "Guide(" in source


# a kernel start, 4 images at 32 px, 2 steps of a ResNet-18: ~10 s of CPU
def test_notebook_guides_through_papermill(tmp_path):
    import papermill as pm

    out, summary = tmp_path / "executed.ipynb", tmp_path / "summary.json"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent),
                        parameters={"data_root": str(tmp_path / "voc"), "n_images": 4, "image_size": 64, "steps": 2,
                                    "show": 2, "summary_path": str(summary)})
    executed = nbformat.read(out, as_version=4)
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert re.search(r"EPG: \d+\.\d % before -> \d+\.\d % after 2 steps", text), text  # percent, formatted
    assert "UserWarning" not in text, text  # layer4 at 64 px: a 2x2 map, nothing for Guide to warn about
    result = json.loads(summary.read_text())
    assert len(result["history"]) == 2 and len(result["epg_before"]) == len(result["epg_after"]) == 4
    assert all(0.0 <= v <= 1.0 for v in result["epg_before"] + result["epg_after"])
    assert result["history"][0]["loc"] > 0


def test_tour_names_the_vit_layer_that_works():
    """The tour says where to guide a torchvision ViT: the layer `layer_choice.vit_layer` names for it."""
    from torchvision.models.vision_transformer import VisionTransformer

    from rightfocus.attributions.layer_choice import vit_layer

    vit_b_16_layout = VisionTransformer(image_size=64, patch_size=16, num_layers=12, num_heads=1, hidden_dim=4,
                                        mlp_dim=4)  # vit_b_16's 12 blocks, tiny widths
    text = NOTEBOOK.read_text()
    assert vit_layer(vit_b_16_layout) in text and "second-to-last block" in text
