"""Rendering whole parts of the synthetic benchmark, for either version, deterministically.

Image i of a part depends only on (version, world, part, i, size, embed_dim): it has its own
random generator, so a set of any size has the same first images. Sets are cached in memory
(a comparison builds the same parts for every method).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from zsseg_bench.datasets.synthetic.world_v1 import PARTS, VERSION, SyntheticBenchmark
from zsseg_bench.datasets.synthetic.world_v2 import VERSION_V2, WorldV2

__all__ = ["VERSIONS", "STREAMS", "world", "render_one", "render_set"]

VERSIONS = {1: VERSION, 2: VERSION_V2}  # dataset.version -> generator version (run records, cache keys)
STREAMS = {**PARTS, "aux": 4}  # the random stream of each part's images


@lru_cache(maxsize=8)
def world(version: int, seed: int, embed_dim: int = 32):
    """The fixed parts of world `seed` of `version` (embeddings, appearance, scenes)."""
    if version not in VERSIONS:
        raise ValueError(f"synthetic benchmark version must be one of {sorted(VERSIONS)}, not {version!r}")
    return SyntheticBenchmark(seed, embed_dim) if version == 1 else WorldV2(seed, embed_dim)


def render_one(version: int, seed: int, part: str, index: int, size: int, embed_dim: int = 32):
    """(image, label, instances, scene id) of image `index` of `part`."""
    bench = world(version, seed, embed_dim)
    if version == 1:
        if part == "aux":
            raise ValueError("auxiliary classes exist in version 2 only")
        return bench.render(np.random.default_rng([seed, STREAMS[part], index]), size)
    rng = np.random.default_rng([seed, 2, STREAMS[part], index])
    return bench.render(rng, size, aux=part == "aux")


@lru_cache(maxsize=8)
def render_set(version: int, seed: int, part: str, count: int, size: int,
               embed_dim: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 3, S, S] and labels uint8 [N, S, S] of the first `count` images of `part`."""
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    labels = np.empty((count, size, size), dtype=np.uint8)
    for i in range(count):
        images[i], labels[i] = render_one(version, seed, part, i, size, embed_dim)[:2]
    return torch.from_numpy(images), torch.from_numpy(labels)
