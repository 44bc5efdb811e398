"""Protocol cards (`rightfocus.protocol`): one per inventory id, declared with its renderer, true to the
paper-profile configs the grids generate, printed by `rightfocus protocol`, and docs/protocol.md is the
generated table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rightfocus import protocol
from rightfocus.cli import main
from rightfocus.experiments import aim_grids, grids
from rightfocus.figures.aim_common import AIM_IDS
from rightfocus.figures.inventory import EXT_GUIDANCE_IDS, EXT_METRIC_IDS, MG_EXTRA_IDS, MG_IDS

REPO = Path(__file__).resolve().parents[1]


def test_every_inventory_id_has_a_card():
    cards = protocol.cards()
    inventory = {*MG_IDS, *MG_EXTRA_IDS, *AIM_IDS}
    assert inventory <= set(cards)
    assert len([i for i in cards if not i.startswith("ext.")]) == len(inventory) == 94
    undeclared = [i for i, c in cards.items() if not c.follows]
    assert not undeclared, f"declare protocol=... with the renderer of: {undeclared}"
    for fig_id, c in cards.items():
        assert c.section, fig_id
        assert set(c.groups) <= {r.group for r in c.recipes}, fig_id  # every group it reads has its recipe


@pytest.mark.parametrize("fig_id", sorted({*MG_IDS, *MG_EXTRA_IDS, *AIM_IDS, *EXT_GUIDANCE_IDS, *EXT_METRIC_IDS}))
def test_card_matches_the_paper_profile_grid(fig_id):
    assert protocol.check(fig_id) == []


def test_a_changed_grid_fails_its_cards(monkeypatch):
    settings = {**grids.SETTINGS["paper"], "guided_epochs": {**grids.SETTINGS["paper"]["guided_epochs"], "voc2007": 49}}
    monkeypatch.setitem(grids.SETTINGS, "paper", settings)
    assert any("epochs" in m for m in protocol.check("mg.fig5a"))
    monkeypatch.setitem(aim_grids.PROFILES, "paper", {**aim_grids.PROFILES["paper"], "batch_size": 256})
    assert any("batch" in m for m in protocol.check("aim.tab1"))


def test_mismatches_reads_init_from_the_config():
    cfg = grids.guided("paper", "voc2007", "bcos", "bcos", "input", "energy", 1e-3)
    recipe = protocol.card("mg.fig5a").recipes[1]
    assert protocol.config_init(cfg) == protocol.INIT_BASELINE
    assert protocol.mismatches(recipe, [cfg]) == []
    scratch = replace(cfg, init_from=None, extra={})
    assert protocol.config_init(scratch) == protocol.INIT_RANDOM
    assert any("init" in m for m in protocol.mismatches(recipe, [scratch]))


def test_docs_table_is_the_generated_output():
    path = REPO / "docs" / "protocol.md"
    assert path.read_text() == protocol.cards_markdown(), \
        "docs/protocol.md is stale: `rightfocus protocol --all --format md > docs/protocol.md`"


def test_cli_prints_one_card_all_cards_and_json(capsys):
    assert main(["protocol", "aim.tab10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### aim.tab10") and "waterbirds" in out and "Table 10" in out
    assert main(["protocol", "--all", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == len(protocol.cards()) and data["mg.tab1"]["recipes"][0]["epochs"] == [350]
    assert main(["protocol", "mg.tab1", "--format", "json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["mg.tab1"]
    assert main(["protocol"]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["protocol", "mg.nope"]) == 2
    assert "no figure/table id" in capsys.readouterr().err


def test_an_id_without_a_declaration_is_printed_as_such_and_flagged():
    from rightfocus.figures import FIGURES, register

    try:
        register("ext.test_undeclared", kind="table")(lambda ctx: None)
        c = protocol.card("ext.test_undeclared")
        assert not c.follows and protocol.UNDECLARED in c.notes[0]
        assert "ext.test_undeclared" in protocol.cards_markdown()  # --all still prints every id
    finally:
        FIGURES.pop("ext.test_undeclared", None)


def test_a_new_module_registers_its_card_in_one_declaration():
    from rightfocus.figures import FIGURES, register
    from rightfocus.figures.mg_common import mg_protocol

    try:
        register("ext.test_card", kind="table", groups=["voc-main"],
                 protocol=mg_protocol("Sec. 5.1", "a sentence", "voc-main"))(lambda ctx: None)
        c = protocol.card("ext.test_card")
        assert c.groups == ("voc-main",) and protocol.check("ext.test_card") == []
    finally:
        FIGURES.pop("ext.test_card", None)
