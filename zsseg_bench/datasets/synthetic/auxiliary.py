"""Auxiliary classes: the synthetic analogue of ImageNet, for a shared initialisation.

A v2 world draws, besides the 12 classes of the splits, the classes in `AUX_NAMES` (horse,
bird, bicycle, ...): same embedding construction, same appearance machinery (shared map, class
offset, modes), same scenes, illuminants and backgrounds. They never appear in the train, val or
test parts, and the auxiliary part holds only them and background, so a backbone pretrained on
it has seen the world's look but none of the classes a split scores.

    data = aux_dataset(world=0, version=2, n_images=2000, size=64)
    data.images        # uint8 [N, 3, S, S]
    data.labels        # uint8 [N, S, S]: 0 background, k = data.class_names[k]
    data.class_names   # ("background", "horse", "bird", ...)
    data.content_key   # everything the pixels depend on: hash it to cache what is trained on them
    data[i]            # {"image", "label" (int64), "index", "name"}, like every dataset

Image i depends only on (world, version, i, size, embed_dim) and the generator version, which
`content_key` lists; a set of n images is the first n of a longer one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from zsseg_bench.datasets.synthetic import generate
from zsseg_bench.datasets.synthetic.generate import VERSIONS, render_one
from zsseg_bench.datasets.synthetic.world_v2 import AUX_NAMES

__all__ = ["AuxData", "aux_dataset", "aux_content_key"]


def aux_content_key(world: int = 0, version: int = 2, n_images: int = 2000, size: int = 64,
                    embed_dim: int = 32) -> dict:
    """What the auxiliary images depend on, as a JSON-able dict (the generator version included)."""
    if version not in VERSIONS or version < 2:
        raise ValueError(f"auxiliary classes exist in synthetic benchmark version 2 only, not {version!r}")
    return {"dataset": "synthetic", "part": "aux", "version": int(version), "generator": VERSIONS[version],
            "world": int(world), "n_images": int(n_images), "size": int(size), "embed_dim": int(embed_dim)}


@dataclass(frozen=True, eq=False)
class AuxData(torch.utils.data.Dataset):
    """The auxiliary part of one world (see the module docstring)."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    content_key: dict

    @property
    def content_hash(self) -> str:
        """sha256 of `content_key` (sorted JSON)."""
        return hashlib.sha256(json.dumps(self.content_key, sort_keys=True).encode()).hexdigest()

    def embeddings(self) -> np.ndarray:
        """The auxiliary classes' embeddings (rows = label ids; row 0 the background's)."""
        key = self.content_key
        bench = generate.world(key["version"], key["world"], key["embed_dim"])
        rows = [0] + [bench.names.index(c) for c in self.class_names[1:]]
        return bench.all_embeddings[rows]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": self.labels[index].long(), "index": index,
                "name": f"synthetic/aux/{index:05d}"}


def aux_dataset(world: int = 0, version: int = 2, n_images: int = 2000, size: int = 64,
                embed_dim: int = 32) -> AuxData:
    """The first `n_images` images of world `world`'s auxiliary part (uint8 tensors, in memory)."""
    key = aux_content_key(world, version, n_images, size, embed_dim)
    if not 16 <= size <= 128 or n_images < 1:
        raise ValueError(f"auxiliary images: size 16 to 128 px and at least one image, not {size} px x {n_images}")
    images = np.empty((n_images, 3, size, size), dtype=np.uint8)
    labels = np.empty((n_images, size, size), dtype=np.uint8)
    for i in range(n_images):
        images[i], labels[i] = render_one(version, world, "aux", i, size, embed_dim)[:2]
    return AuxData(torch.from_numpy(images), torch.from_numpy(labels), ("background",) + AUX_NAMES, key)
