"""Data-only statistics of the synthetic benchmark's knobs (`zsbench data stats synthetic`).

Nothing is trained: each number is read from generated images and their instance maps.

* **Appearance from the embedding** (`loco_r2`): each object instance is described by the mean
  and standard deviation of its visible pixels per channel (6 numbers: colour and texture
  contrast); each class by the mean over its instances. A ridge regression from the class
  embedding to that description is fitted on all classes but one and predicts the left-out one;
  R² = 1 - squared error / squared deviation from the fitted classes' mean, over all held-out
  classes and features (each feature scaled to unit variance across classes first). 1: the
  embedding predicts how a class looks; 0 or less: no better than the average class.
* **Appearance from the scene** (`scene_share`): per class and feature, the share of the
  variance between instances that the scene explains (epsilon², i.e. corrected for the share
  chance alone gives with a few instances), averaged over features and over classes that appear
  in at least two scenes (weighted by their instance count).
* **Local context** (`touching`, `neighbour_information`): the share of object instances whose
  visible pixels touch (4-neighbour) those of another instance; how much a touching neighbour's
  class says about an object's class beyond what the scene says (the mutual information of the
  two classes over touching pairs, given the scene, in bits); the pairs that touch most often.
  Objects placed at random touch often too, so the information is the number that matters.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from zsseg_bench.datasets.synthetic.generate import render_one, world
from zsseg_bench.datasets.synthetic.world_v1 import CLASS_NAMES

__all__ = ["instance_features", "loco_r2", "scene_share", "touching", "neighbour_information", "knob_statistics",
           "mean_statistics"]

MIN_PIXELS = 12  # instances with fewer visible pixels are too occluded to describe


def instance_features(image: np.ndarray, label: np.ndarray, instances: np.ndarray):
    """[(class id, 6 features)] of the instances with at least MIN_PIXELS visible pixels."""
    pixels = image.reshape(3, -1).astype(np.float64) / 255.0
    out = []
    for k in np.unique(instances):
        if k == 0:
            continue
        where = (instances == k).reshape(-1)
        if where.sum() < MIN_PIXELS:
            continue
        values = pixels[:, where]
        cid = int(np.bincount(label.reshape(-1)[where]).argmax())
        out.append((cid, np.concatenate([values.mean(1), values.std(1)])))
    return out


def loco_r2(embeddings: np.ndarray, targets: np.ndarray, alpha: float = 1.0) -> float:
    """Leave-one-class-out R² of ridge regression targets [C, F] ~ embeddings [C, D] (see module doc)."""
    y = targets / np.maximum(targets.std(0, keepdims=True), 1e-12)
    err = dev = 0.0
    for c in range(len(y)):
        keep = np.arange(len(y)) != c
        x_mean, y_mean = embeddings[keep].mean(0), y[keep].mean(0)
        x, t = embeddings[keep] - x_mean, y[keep] - y_mean
        w = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ t)
        pred = (embeddings[c] - x_mean) @ w + y_mean
        err += float(((y[c] - pred) ** 2).sum())
        dev += float(((y[c] - y_mean) ** 2).sum())
    return 1.0 - err / dev


def scene_share(features: np.ndarray, classes: np.ndarray, scenes: np.ndarray, min_count: int = 5) -> float:
    """Share of within-class variance explained by the scene (epsilon², see module doc)."""
    shares, weights = [], []
    for c in np.unique(classes):
        f, s = features[classes == c], scenes[classes == c]
        groups = [g for g in np.unique(s) if (s == g).sum() >= min_count]
        if len(groups) < 2:
            continue
        keep = np.isin(s, groups)
        f, s = f[keep], s[keep]
        total = ((f - f.mean(0)) ** 2).sum(0)
        between = sum((s == g).sum() * (f[s == g].mean(0) - f.mean(0)) ** 2 for g in groups)
        within_ms = (total - between) / (len(f) - len(groups))
        eps = (between - (len(groups) - 1) * within_ms) / np.maximum(total, 1e-12)
        shares.append(float(eps.mean()))
        weights.append(len(f))
    return float(np.average(shares, weights=weights)) if shares else float("nan")


def touching(instances: np.ndarray, label: np.ndarray) -> tuple[int, int, Counter]:
    """(instances visible, instances touching another, Counter of touching class-id pairs) of one image."""
    pairs = set()
    for a, b in ((instances[:, 1:], instances[:, :-1]), (instances[1:, :], instances[:-1, :])):
        edge = (a != b) & (a > 0) & (b > 0)
        pairs.update(zip(a[edge].tolist(), b[edge].tolist()))
    pairs = {tuple(sorted(p)) for p in pairs}
    present = [k for k in np.unique(instances) if k > 0]
    touched = {k for p in pairs for k in p}
    cls = {k: int(np.bincount(label[instances == k]).argmax()) for k in present}
    return len(present), len(touched), Counter(tuple(sorted((cls[a], cls[b]))) for a, b in pairs)


def neighbour_information(pairs: dict[int, Counter]) -> float:
    """I(class; touching neighbour's class | scene) in bits, from {scene: Counter of (a, b) pairs}
    (each unordered pair counted in both orders, so the two classes play the same role)."""
    total = sum(sum(c.values()) for c in pairs.values())
    info = 0.0
    for counts in pairs.values():
        n = sum(counts.values())
        if n == 0:
            continue
        joint: Counter = Counter()
        for (a, b), k in counts.items():
            joint[(a, b)] += k
            joint[(b, a)] += k
        side: Counter = Counter()
        for (a, _), k in joint.items():
            side[a] += k
        m = 2 * n
        info += n / total * sum(k / m * np.log2(k * m / (side[a] * side[b])) for (a, b), k in joint.items())
    return float(info)


def knob_statistics(version: int, world_seed: int = 0, n_images: int = 600, size: int = 64, part: str = "train",
                    embed_dim: int = 32) -> dict:
    """The knob statistics of the first `n_images` images of `part` (see the module doc)."""
    feats, classes, scenes = [], [], []
    n_visible = n_touching = 0
    pairs: dict[int, Counter] = {}
    for i in range(n_images):
        image, label, instances, scene = render_one(version, world_seed, part, i, size, embed_dim)
        for cid, f in instance_features(image, label, instances):
            feats.append(f)
            classes.append(cid)
            scenes.append(scene)
        visible, touched, found = touching(instances, label)
        n_visible, n_touching = n_visible + visible, n_touching + touched
        pairs.setdefault(scene, Counter()).update(found)
    feats, classes, scenes = np.array(feats), np.array(classes), np.array(scenes)
    ids = np.unique(classes)
    means = np.stack([feats[classes == c].mean(0) for c in ids])
    emb = world(version, world_seed, embed_dim).embeddings[ids]
    names = dict(enumerate(CLASS_NAMES))
    every: Counter = sum(pairs.values(), Counter())
    return {"version": version, "world": world_seed, "part": part, "images": n_images, "instances": len(feats),
            "loco_r2": loco_r2(emb, means), "scene_share": scene_share(feats, classes, scenes),
            "touching_share": n_touching / max(n_visible, 1), "neighbour_bits": neighbour_information(pairs),
            "pairs": {f"{names[a]}-{names[b]}": n for (a, b), n in every.items()},
            "top_pairs": [(f"{names[a]}-{names[b]}", n) for (a, b), n in every.most_common(5)]}


def mean_statistics(version: int, worlds: list[int], n_images: int = 600, size: int = 64) -> dict:
    """`knob_statistics` averaged over `worlds` (numbers: mean; touching pairs: counts summed)."""
    runs = [knob_statistics(version, w, n_images, size) for w in worlds]
    out = {k: float(np.mean([r[k] for r in runs])) for k in ("loco_r2", "scene_share", "touching_share",
                                                             "neighbour_bits", "instances")}
    pairs: Counter = Counter()
    for r in runs:
        pairs.update(r["pairs"])
    return {**out, "version": version, "worlds": list(worlds), "images": n_images, "top_pairs": pairs.most_common(5)}
