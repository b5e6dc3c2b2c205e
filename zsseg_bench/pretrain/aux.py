"""Auxiliary data for the shared initialisation: classes of the synthetic world that no split uses.

The official codes start from a DeepLab pretrained on ImageNet (or COCO), i.e. on classes other
than the benchmark's. The synthetic analogue is a set of auxiliary classes drawn from the same
world (the same appearance map, so the low-level statistics match) whose embeddings are not any
benchmark class's: no split names them, so pretraining on them teaches the backbone to see
shapes, colours and stripes without ever seeing a seen or unseen class.

`aux_set(dataset_options, count)` is the one entry point the pretraining reads. The world's own
auxiliary renderer is used when the dataset offers one (`SyntheticSegmentation.aux_set`);
`_world_v1` is the version-1 renderer, written here because benchmark v1 has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from zsseg_bench.datasets.synthetic import SyntheticBenchmark

__all__ = ["AuxSet", "aux_set", "AUX_CLASSES"]

AUX_CLASSES = 8
AUX_IGNORE = 255  # the background of an auxiliary image is not a class to learn
_AUX_STREAM = 17  # the rng stream of the auxiliary classes and images (benchmark parts use 0-3)


@dataclass
class AuxSet:
    images: torch.Tensor  # uint8 [N, 3, S, S]
    labels: torch.Tensor  # uint8 [N, S, S]: 0..num_classes-1, AUX_IGNORE elsewhere
    num_classes: int
    spec: dict  # what the set is made of (part of the shared initialisation's hash)


def aux_set(options: dict, count: int) -> AuxSet:
    """`count` auxiliary images of the world the synthetic `options` describe."""
    seed, size, dim = options["seed"], options["size"], options["embed_dim"]
    images, labels = _world_v1(seed, count, size, dim)
    spec = {"renderer": "aux-v1", "world": seed, "count": count, "size": size, "embed_dim": dim,
            "classes": AUX_CLASSES}
    return AuxSet(torch.from_numpy(images), torch.from_numpy(labels), AUX_CLASSES, spec)


def _world_v1(seed: int, count: int, size: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    bench = SyntheticBenchmark(seed, dim)
    rng = np.random.default_rng([seed, _AUX_STREAM])
    emb = rng.standard_normal((AUX_CLASSES, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    # The world's appearance map applied to new embeddings: same family of looks, other classes.
    bench.appearance = np.stack([bench._appear(e) for e in emb])
    looks = [bench.look(k) for k in range(AUX_CLASSES)]
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    labels = np.empty((count, size, size), dtype=np.uint8)
    for i in range(count):
        images[i], labels[i] = _render(np.random.default_rng([seed, _AUX_STREAM, i]), looks, size)
    return images, labels


def _render(rng: np.random.Generator, looks: list[dict], size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta, freq = rng.uniform(0, np.pi), rng.uniform(0.04, 0.12)
    wave = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
    image = rng.uniform(0.15, 0.85, 3)[:, None, None] + rng.uniform(-0.12, 0.12, 3)[:, None, None] * wave[None]
    label = np.full((size, size), AUX_IGNORE, dtype=np.uint8)
    scale = size / 64.0
    for _ in range(int(rng.integers(2, 5))):
        k = int(rng.integers(len(looks)))
        look = looks[k]
        radius = rng.uniform(8, 16) * scale
        aspect = look["aspect"] * np.exp(rng.normal(0, 0.1))
        rx, ry = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
        cx, cy = rng.uniform(0.1, 0.9, 2) * size
        mask = (np.abs(xx - cx) / rx) ** look["power"] + (np.abs(yy - cy) / ry) ** look["power"] <= 1.0
        rgb = np.clip(look["rgb"] + rng.normal(0, 0.04, 3), 0, 1)
        angle = look["theta"] + rng.normal(0, 0.15)
        stripes = np.sin(2 * np.pi * look["freq"] * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6.3))
        image = np.where(mask[None], rgb[:, None, None] + look["tex"][:, None, None] * stripes[None], image)
        label[mask] = k
    image = image * rng.uniform(0.85, 1.15) + rng.normal(0, 0.05, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), label
