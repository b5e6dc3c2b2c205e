"""The weak-shot cards' synthetic schedules are SimFormer's official stages times the factor their
`budget` states (the convention of tests/methods/test_budgets.py for the default run): iterations
x factor, official batch sizes, learning rates at the official ratio to seg's; every row of the
weak-shot table sees the same seg images; the real-data blocks keep the official values.

Official (SimFormer `_1Prop_Cfgs`, COCO-Stuff-10K): seg 60000 iterations x batch 8 at lr 1e-4;
crosim (`s1_seg_crosim_resume`) 5000 x batch 4 at 1e-5; retraining 60000 x batch 8 at 1e-4.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from zsseg_bench.catalog.cards import load_card, resolve_config

OFFICIAL = {"seg": (60000, 8, 1e-4), "crosim": (5000, 4, 1e-5), "retraining": (60000, 8, 1e-4)}
STAGES = {"maskformer-ws": ["seg"], "maskformer-full": ["seg"], "simformer": ["seg", "crosim", "retraining"]}


def _budget(name: str) -> dict:
    card = load_card(name)
    return card.budget or _budget(card.base)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_synthetic_stages_are_the_official_ones_times_the_factor(name):
    schedule = resolve_config(load_card(name), "synthetic")["schedule"]
    budget = _budget(name)
    factor = Fraction(str(budget["factor"]))
    seg_lr = schedule["seg"]["lr"]
    for stage in ("seg", "crosim", "retraining"):
        iterations, batch, lr = OFFICIAL[stage]
        got = schedule[stage]
        if stage not in STAGES[name]:
            assert got["iterations"] == 0, f"{name}: {stage} should be off"
            continue
        assert got["iterations"] == iterations * factor, f"{name}/{stage}: {got['iterations']} iterations"
        assert got["batch_size"] == batch, f"{name}/{stage}: batch {got['batch_size']}, official {batch}"
        assert got["lr"] / seg_lr == pytest.approx(lr / OFFICIAL["seg"][2]), f"{name}/{stage}: lr ratio"
    assert schedule["seg"]["iterations"] * schedule["seg"]["batch_size"] == budget["feature_images"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_synthetic_starts_from_the_shared_initialisation(name):
    assert resolve_config(load_card(name), "synthetic")["backbone"]["init"] == "shared"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_real_data_keeps_the_official_schedule_and_model(name):
    cfg = resolve_config(load_card(name), "cocostuff10k")
    iterations, batch, lr = OFFICIAL["seg"]
    assert (cfg["schedule"]["seg"]["iterations"], cfg["schedule"]["seg"]["batch_size"],
            cfg["schedule"]["seg"]["lr"]) == (iterations, batch, lr)
    model = cfg["model"]
    assert (model["queries"], model["decoder_layers"], model["hidden_dim"], model.get("memory_pool", 1)) \
        == (100, 6, 256, 1)
