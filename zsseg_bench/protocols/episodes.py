"""Test episodes of the episodic zero-shot protocol (`fss-zeroshot`, SAZS/LSeg, HSNet's data code).

An episode is one test image and one class of the held-out fold; the method predicts a binary
mask for that class. A split file states how its episodes are drawn (`episodes:` field):

* ``rule: cycle`` (PASCAL-5i): the fold's (image, class) pairs, every test image with every fold
  class it contains, in image order then class order; episode i is pair i mod n_pairs, so with
  n_pairs < count some pairs are scored twice (HSNet's ``__len__`` of 1,000 over its fold list).
* ``rule: random`` (COCO-20i): each episode draws a fold class, then one test image containing
  it, from one generator seeded with ``seed``. The draws follow numpy's PCG64 under that seed, not
  the official code's stream (``np.random`` after ``fix_randseed(0)``): the same rule, other images.

``count`` is the number of episodes (1,000 in both official protocols). Which classes an image
contains comes from its mask (the cached presence matrix, `datasets/presence.py`); a class whose
pixels are all ignore-valued is not present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EPISODE_RULES", "Episodes", "check_episode_rule", "episode_rule", "build_episodes", "fold_pairs",
           "training_episodes"]

EPISODE_RULES = ("cycle", "random")
DEFAULT_RULE = {"rule": "cycle", "count": 1000}


def check_episode_rule(value) -> str:
    """'' when `value` is a valid `episodes:` mapping of a split file, else what is wrong."""
    if not isinstance(value, dict):
        return "must be a mapping like {rule: cycle, count: 1000}"
    unknown = set(value) - {"rule", "count", "seed"}
    if unknown:
        return f"unknown key {sorted(unknown)[0]!r}; use rule, count and (for random) seed"
    if value.get("rule") not in EPISODE_RULES:
        return f"rule {value.get('rule')!r} is not one of {EPISODE_RULES}"
    count = value.get("count", 1000)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return "count must be a positive integer"
    seed = value.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        return "seed must be a non-negative integer"
    return ""


def episode_rule(split) -> dict:
    """The split's episode rule with defaults filled in: {rule, count, seed}."""
    rule = {**DEFAULT_RULE, "seed": 0, **(split.raw.get("episodes") or {})}
    return rule


@dataclass(frozen=True)
class Episodes:
    """Episode e is image `images[e]` (dataset index) with class `classes[e]` (evaluation index)."""

    images: np.ndarray  # int64 [E]
    classes: np.ndarray  # int64 [E]
    class_names: tuple[str, ...]  # the fold's classes, the ones scored
    n_pairs: int  # distinct (image, class) pairs the episodes come from
    rule: dict

    def __len__(self) -> int:
        return len(self.images)

    def by_image(self) -> dict[int, list[int]]:
        """Image -> its episodes (indices into this list), images in first-use order."""
        out: dict[int, list[int]] = {}
        for e, image in enumerate(self.images.tolist()):
            out.setdefault(image, []).append(e)
        return out


def fold_pairs(presence: np.ndarray, raw_ids: list[int], images: np.ndarray | None = None) -> np.ndarray:
    """[P, 2] (image, position in `raw_ids`) for every image (of `images`, default all) containing each
    class, in image order then class order."""
    images = np.arange(presence.shape[0]) if images is None else np.asarray(images)
    sub = presence[np.ix_(images, raw_ids)]
    rows, cols = np.nonzero(sub)
    return np.stack([images[rows], cols], axis=1).astype(np.int64)


def build_episodes(presence: np.ndarray, split, class_names: tuple[str, ...] | None = None,
                   images: np.ndarray | None = None, rule: dict | None = None) -> Episodes:
    """The episodes of `split`'s fold (its unseen classes; or `class_names`) over the images whose
    presence rows are given (one row per dataset image, one column per raw label id)."""
    rule = {**episode_rule(split), **(rule or {})}
    names = tuple(class_names if class_names is not None else split.unseen)
    raw_ids = [split.classes.id_of(n) for n in names]
    eval_idx = np.array([split.eval_names.index(n) for n in names], dtype=np.int64)
    pairs = fold_pairs(presence, raw_ids, images)
    if len(pairs) == 0:
        raise ValueError(f"no test image contains any of {list(names)}")
    count = rule["count"]
    if rule["rule"] == "cycle":
        chosen = pairs[np.arange(count) % len(pairs)]
    else:
        gen = np.random.default_rng(rule["seed"])
        present = [pairs[pairs[:, 1] == c, 0] for c in range(len(names))]
        usable = [c for c in range(len(names)) if len(present[c])]
        chosen = np.empty((count, 2), dtype=np.int64)
        for e in range(count):
            c = usable[int(gen.integers(len(usable)))]
            chosen[e] = (present[c][int(gen.integers(len(present[c])))], c)
    return Episodes(images=chosen[:, 0].copy(), classes=eval_idx[chosen[:, 1]], class_names=names,
                    n_pairs=len(pairs), rule=rule)


def training_episodes(presence: np.ndarray, split, images: np.ndarray, count: int) -> Episodes:
    """Episodes over the training folds' classes (the split's seen object classes) on held-out training
    images: checkpoint selection and the leakage-free fusion threshold are chosen on these."""
    names = tuple(n for n in split.seen_names if n != split.background_class)
    present = [n for n in names if presence[np.asarray(images), split.classes.id_of(n)].any()] if len(images) else []
    return build_episodes(presence, split, tuple(present), images, rule={"rule": "cycle", "count": count})
