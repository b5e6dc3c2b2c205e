"""Method cards: every card resolves; precedence of layers; overrides; unknown names."""

from __future__ import annotations

import pytest

from zsseg_bench.catalog.cards import list_cards, load_card, parse_override, resolve_config
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS

CARDS = list_cards()


@pytest.mark.parametrize("card", CARDS, ids=[c.name for c in CARDS])
def test_card_resolves(card):
    assert card.impl in IMPLEMENTATIONS
    cfg = resolve_config(card, "synthetic")
    assert isinstance(cfg, dict) and cfg


def test_precedence_base_card_dataset_override():
    card = load_card("spnet-c")
    cfg = resolve_config(card, "synthetic", ["train.lr=0.5", "calibration.grid=[0, 1, 0.5]"])
    assert cfg["train"]["lr"] == 0.5  # --set wins
    assert cfg["train"]["iterations"] == load_card("spnet").config["train"]["iterations"]  # from base
    assert cfg["calibration"]["gamma"] == "heldout"  # card overrides base
    assert cfg["calibration"]["grid"] == [0, 1, 0.5]


def test_parse_override_reads_yaml_values():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("x=[1, 2]") == (["x"], [1, 2])
    assert parse_override("name=small-cnn") == (["name"], "small-cnn")
    assert parse_override("train.lr=1e-4") == (["train", "lr"], 1e-4)  # a string in YAML 1.1
    with pytest.raises(ZsbenchError):
        parse_override("novalue")


def test_unknown_method_suggests():
    with pytest.raises(ZsbenchError, match="did you mean 'spnet'"):
        load_card("spnte")


def test_default_run_is_the_eight_rows_of_the_seed_tables():
    from zsseg_bench.runs.train import default_methods

    assert default_methods() == ["spnet", "spnet-c", "zs3net", "zs3net+st",
                                 "cagnet-pi", "cagnet-pa", "cagnet-pi+st", "cagnet-pa+st"]
