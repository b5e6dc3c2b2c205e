"""The weak-shot data path (SimFormer's protocol): image-level labels of the training images.

A weak-shot split lists its novel classes as `unseen` with `train_policy: ignore_unseen_pixels`, so
training label maps carry base pixels only (novel pixels ignored, as for gzs3). What a weak-shot
method gets in addition is, per training image, which classes occur in it: `image_level_labels`
computes that table once from the masks (the cached class presence, presence.py), and the run
context hands methods only its novel columns, batch by batch (`novel_present`). Nothing else about
novel classes reaches training; tests/methods/maskformer/test_weak_shot_path.py checks it.
"""

from __future__ import annotations

import numpy as np

from zsseg_bench.datasets.presence import class_presence

__all__ = ["image_level_labels"]


def image_level_labels(split, dataset) -> np.ndarray | None:
    """bool [len(dataset), K] over the split's evaluation classes for a weak-shot split, else None."""
    if split.task_protocol != "weak-shot":
        return None
    presence = class_presence(dataset)
    ids = np.asarray(split.eval_raw_ids)
    if presence.shape[1] <= ids.max():
        presence = np.pad(presence, ((0, 0), (0, int(ids.max()) + 1 - presence.shape[1])))
    return presence[:, ids]
