"""Every registered method card builds, trains a few steps of every stage and predicts over
all classes of the split, on the synthetic benchmark on CPU. New methods are picked up from the
registry with no new test code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.configs import card_config
from zsseg_bench.catalog.cards import list_cards, load_card
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.weak_shot import image_level_labels
from zsseg_bench.embeddings.base import split_embeddings
from zsseg_bench.engine.context import RunContext
from zsseg_bench.engine.loop import apply_updates, seed_everything
from zsseg_bench.methods import IMPLEMENTATIONS, ClassSpace

CARDS = [c.name for c in list_cards()]


# The synthetic split each protocol trains on (a method that declares protocols gets its first one's).
PROTOCOL_SPLITS = {"gzs3": "synthetic-9-3", "weak-shot": "synthetic-ws-10-3", "fss-zeroshot": "synthetic-5i-f0"}


@pytest.fixture(scope="module")
def setup():
    train = build_dataset("synthetic", "train", None, {"n_train": 64})
    return train


def _split_for(card):
    """The synthetic split of the card's first task protocol (episodic methods: the fss-zeroshot fold 0)."""
    protocols = IMPLEMENTATIONS.get(card.impl).task_protocols or ("gzs3",)
    return load_split(PROTOCOL_SPLITS[protocols[0]])


@pytest.mark.parametrize("name", CARDS)
def test_method_trains_every_stage_and_predicts(setup, name):
    train = setup
    card = load_card(name)
    split = _split_for(card)
    cfg = card_config(name, overrides=["data.batch_size=4"])
    emb = split_embeddings(split, train, cfg["embeddings"])
    classes = ClassSpace(split.eval_names, torch.from_numpy(split.seen_mask), torch.from_numpy(emb), 255,
                         split.calibration_val)
    method = IMPLEMENTATIONS.get(card.impl)(cfg, classes)
    ctx = RunContext(split=split, train_set=train, device=torch.device("cpu"), seed=0, cfg=cfg,
                       pass_unseen_labels=method.protocol_flags()["uses_unseen_labels"],
                       image_labels=image_level_labels(split, train))
    batches = ctx.batches(seed_everything(0, 1))
    for k, stage in enumerate(method.stages()):
        method.on_stage_start(stage, ctx)
        optimizers = method.configure_optimizers(stage)
        for it in range(2):
            method.train()
            losses = method.training_step(next(batches), stage, it)
            assert all(torch.isfinite(v) for v in losses.values()), (stage.name, losses)
            apply_updates(losses, stage, optimizers)
    method.eval()
    images = next(batches)["image"]
    with torch.no_grad():
        scores = method.predict(images, images.shape[-2:])
    assert scores.shape == (images.shape[0], split.num_classes, *images.shape[-2:])
    assert np.isfinite(scores.numpy()).all()
