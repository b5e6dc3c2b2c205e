"""The `fss-zeroshot` protocol inside a run: held-out training images, episodes, fused scores.

`zsbench run` calls `prepare_training` before training (it holds a share of the training images
out of training, and gives the method a scorer for choosing its epoch) and `score_run` instead of
the confusion matrix. Scoring runs every test episode once and adds its prediction to three
meters, one per fusion mode (none, self, oracle: fusion.py), so one record shows all three; the
card's `fusion.mode` names the headline `FG-mIoU`/`FB-IoU` of metrics.json.

    metrics.json   protocol, fusion (the headline mode), FG-mIoU, FB-IoU, by_fusion {mode: {FG-mIoU,
                   FB-IoU}}, self_threshold and where it was chosen, episodes (rule, count, pairs),
                   eigs (where the masks came from)
    per_class.csv  fusion, class_name, episodes, fg_iou, fg_intersection, fg_union
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from zsseg_bench.datasets.presence import class_presence
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.episodic import PROTOCOL, EpisodeMeter, binary_counts
from zsseg_bench.protocols.eigsource import EigenSource
from zsseg_bench.protocols.episodes import Episodes, build_episodes, training_episodes
from zsseg_bench.protocols.fusion import THRESHOLD_GRID, choose_threshold, fuse_oracle, fuse_self

__all__ = ["PROTOCOL", "is_episodic", "run_episodes", "prepare_training", "score_run", "test_episodes"]



def is_episodic(split) -> bool:
    return split.task_protocol == PROTOCOL


def _check_method(method) -> None:
    if not (hasattr(method, "features") and hasattr(method, "binary_logits")):
        raise ZsbenchError(f"method {method.impl!r} has no episodic head (features + binary_logits); the "
                           f"fss-zeroshot protocol runs sazs and lseg-zs")


def _candidates(method, feats, classes, size):
    logits = method.binary_logits(feats.expand(len(classes), -1, -1, -1), classes)
    logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
    return logits.argmax(1) == 1


@torch.no_grad()
def run_episodes(method, ctx, dataset, episodes: Episodes, eigs: EigenSource | None, thresholds=(),
                 oracle: bool = True) -> dict[str, EpisodeMeter]:
    """Meters of every episode: 'none'; with eigen-masks also f'self@{t}' per threshold and 'oracle'."""
    _check_method(method)
    method.eval()
    keys = ["none"] + ([f"self@{t}" for t in thresholds] + (["oracle"] if oracle else []) if eigs else [])
    meters = {k: EpisodeMeter(episodes.class_names) for k in keys}
    names = ctx.split.eval_names
    position = {names.index(n): p for p, n in enumerate(episodes.class_names)}
    by_image = episodes.by_image()
    ignore = ctx.split.ignore_index
    loader = ctx.loader(list(by_image), ctx.cfg["eval"]["batch_size"], shuffle=False, dataset=dataset, train=False)
    ctx.reporter.stage_start("episodes", len(loader))
    for batch in loader:
        b = ctx.to_device(batch, ctx.eval_lut)
        label, size = b["label"], b["label"].shape[-2:]
        feats = method.features(b["image"])
        masks = eigs.masks(b["image"], b["name"], size) if eigs else None
        for i, image in enumerate(batch["index"].tolist()):
            eps = by_image[image]
            classes = torch.as_tensor(episodes.classes[eps], device=label.device)
            preds = _candidates(method, feats[i:i + 1], classes, size)
            for pred, cls in zip(preds, classes.tolist()):
                truth = torch.where(label[i] == ignore, label[i], (label[i] == cls).long())
                fused = {"none": pred}
                if masks is not None:
                    fused.update({f"self@{t}": fuse_self(pred, masks[i], t) for t in thresholds})
                    if oracle:
                        fused["oracle"] = fuse_oracle(pred, masks[i], truth, ignore)
                for key, mask in fused.items():
                    meters[key].add(position[cls], binary_counts(mask, truth, ignore))
        ctx.reporter.advance(1)
    ctx.reporter.stage_end()
    return meters


def _presence(dataset) -> np.ndarray:
    return class_presence(dataset)


def test_episodes(split, test_set) -> Episodes:
    try:
        return build_episodes(_presence(test_set), split)
    except ValueError as exc:
        raise ZsbenchError(f"split {split.name}: {exc}; check the test set with 'zsbench data check'") from None


def prepare_training(ctx, cfg: dict, seed: int, test_set) -> dict:
    """Hold `selection.heldout_fraction` of the training images out of training (ctx.train_indices
    shrinks) and give the method its epoch scorer (`ctx.selection_scorer`). Returns the facts."""
    sel = cfg.get("selection") or {"mode": "last"}
    facts = {"selection": sel["mode"], "heldout_images": 0}
    ctx.heldout_episodes = None
    if "heldout_fraction" not in sel:
        return facts
    rng = np.random.default_rng(seed + 7001)
    order = rng.permutation(ctx.train_indices)
    n_out = max(1, int(round(sel["heldout_fraction"] * len(order))))
    heldout, ctx.train_indices = np.sort(order[:n_out]), np.sort(order[n_out:])
    try:
        ctx.heldout_episodes = training_episodes(_presence(ctx.train_set), ctx.split, heldout, sel["episodes"])
    except ValueError as exc:
        raise ZsbenchError(f"held-out training images ({n_out}, selection.heldout_fraction "
                           f"{sel['heldout_fraction']}): {exc}; hold out more images") from None
    facts["heldout_images"] = int(n_out)
    if sel["mode"] == "heldout":
        ctx.selection_scorer = lambda m: _fg(run_episodes(m, ctx, ctx.train_set, ctx.heldout_episodes, None))
    elif sel["mode"] == "test-fold":
        episodes = test_episodes(ctx.split, test_set)
        ctx.selection_scorer = lambda m: _fg(run_episodes(m, ctx, test_set, episodes, None))
    return facts


def _fg(meters: dict) -> float:
    return meters["none"].scores()["FG-mIoU"]


def _self_threshold(method, ctx, fusion: dict, eigs: EigenSource) -> tuple[float, str, dict]:
    """The `self` fusion threshold: the configured number, or the best on held-out training episodes."""
    if fusion["threshold"] != "heldout":
        return float(fusion["threshold"]), "config", {}
    if ctx.heldout_episodes is None:
        raise ZsbenchError("fusion.threshold heldout needs held-out training images (selection.heldout_fraction)")
    meters = run_episodes(method, ctx, ctx.train_set, ctx.heldout_episodes, eigs, THRESHOLD_GRID, oracle=False)
    scores = {t: meters[f"self@{t}"].scores()["FG-mIoU"] for t in THRESHOLD_GRID}
    return choose_threshold(scores), "held-out training-fold episodes", {str(t): s for t, s in scores.items()}


def score_run(record, method, ctx, split, test_set, cfg: dict) -> dict:
    """Score the test fold's episodes under every fusion mode; write metrics.json and per_class.csv."""
    fusion = cfg.get("fusion") or {"mode": "none", "eigs": None, "k": 5, "stride": 4, "threshold": 1.01}
    eigs = EigenSource(fusion["eigs"], fusion["k"], fusion["stride"])
    threshold, chosen_on, grid = _self_threshold(method, ctx, fusion, eigs)
    episodes = test_episodes(split, test_set)
    meters = run_episodes(method, ctx, test_set, episodes, eigs, (threshold,))
    meters["self"] = meters.pop(f"self@{threshold}")
    by_fusion = {mode: m.scores() for mode, m in meters.items()}
    head = by_fusion[fusion["mode"]]
    metrics = {"protocol": PROTOCOL, "fusion": fusion["mode"], "FG-mIoU": head["FG-mIoU"], "FB-IoU": head["FB-IoU"],
               "by_fusion": by_fusion, "self_threshold": threshold, "self_threshold_chosen_on": chosen_on,
               "self_threshold_grid": grid, "episodes": {**episodes.rule, "n_pairs": episodes.n_pairs,
                                                        "n_images": len(episodes.by_image())},
               "eigs": eigs.describe(), "n_images": len(episodes.by_image())}
    record.write_csv("per_class.csv", pd.concat([m.per_class().assign(fusion=mode) for mode, m in meters.items()]))
    record.write_json("metrics.json", metrics)
    return metrics
