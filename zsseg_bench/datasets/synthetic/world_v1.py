"""Version 1 of the synthetic benchmark (kept byte-identical and selectable: `dataset.version: 1`).

Why it looks like this (the README section "The synthetic benchmark" says the same):

* **Classes and embeddings.** A background and 12 object classes in three superclasses of four
  (animals, vehicles, furniture; the names are labels only). Each class embedding is its
  superclass centre plus a class-specific offset, L2-normalised, so siblings are close
  (cosine about 0.6) and other classes are not, like word vectors of related words.
* **Appearance comes from the embedding**, through one fixed random map shared by every class:
  a small tanh network turns an embedding into colour, texture colour, stripe frequency and
  orientation, aspect ratio and corner sharpness. Nearby embeddings therefore look alike.
  Per-instance jitter, pixel noise and global brightness keep it from being trivial.
* **Context** sets only the background's look, which classes appear and their vertical band
  (the flaw version 2 mends: appearance is the same in every scene).
* **Deterministic.** Image i of a part comes from its own generator seeded by (world, part, i).
  Nothing here may change: a change of pixels is a new version.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SyntheticBenchmark", "CLASS_NAMES", "SUPERCLASSES", "SCENES", "VERSION", "PARTS"]

VERSION = "1"
SUPERCLASSES = {
    "animal": ("cat", "dog", "cow", "sheep"),
    "vehicle": ("car", "bus", "train", "boat"),
    "furniture": ("chair", "sofa", "table", "tvmonitor"),
}
CLASS_NAMES = ("background",) + tuple(c for group in SUPERCLASSES.values() for c in group)
# Relative frequency of each class in each scene (classes not listed never appear there) and
# the vertical band (fraction of the height) that holds object centres.
SCENES = {
    "pasture": ({"cow": 3, "sheep": 3, "dog": 1.5, "cat": 0.5, "car": 0.5}, (0.45, 0.85)),
    "street": ({"car": 3, "bus": 2, "train": 2, "dog": 0.7, "cat": 0.3}, (0.35, 0.8)),
    "harbour": ({"boat": 4, "car": 1, "train": 0.7, "dog": 0.4}, (0.5, 0.9)),
    "living room": ({"chair": 2, "sofa": 2, "table": 2, "tvmonitor": 2, "cat": 1.5, "dog": 1}, (0.25, 0.8)),
}
PARTS = {"train": 1, "test": 2, "val": 3}  # the stream id of each part's images


class SyntheticBenchmark:
    """The fixed parts of the benchmark: embeddings, the appearance map, scene backgrounds."""

    def __init__(self, seed: int = 0, embed_dim: int = 32, sibling_spread: float = 0.8):
        rng = np.random.default_rng([seed, 0])
        self.seed = seed
        self.embed_dim = embed_dim
        centres = rng.standard_normal((len(SUPERCLASSES), embed_dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        rows = [rng.standard_normal(embed_dim)]  # background: unrelated to every object
        for g, group in enumerate(SUPERCLASSES.values()):
            for _ in group:
                offset = rng.standard_normal(embed_dim)
                offset /= np.linalg.norm(offset)
                rows.append(centres[g] + sibling_spread * offset)
        emb = np.stack(rows)
        self.embeddings = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        # One appearance map for all classes: embedding -> 16 tanh units -> 11 parameters.
        self._w1 = rng.standard_normal((16, embed_dim)) * 1.5
        self._w2 = rng.standard_normal((11, 16)) / 2.0
        self.appearance = np.stack([self._appear(e) for e in self.embeddings])
        # Scene backgrounds: colour, texture colour, frequency, orientation.
        self.scene_looks = []
        for _ in SCENES:
            self.scene_looks.append({
                "rgb": rng.uniform(0.15, 0.85, 3),
                "tex": rng.uniform(-0.12, 0.12, 3),
                "freq": rng.uniform(0.04, 0.12),
                "theta": rng.uniform(0, np.pi),
            })

    def _appear(self, e: np.ndarray) -> np.ndarray:
        return self._w2 @ np.tanh(self._w1 @ e)

    @staticmethod
    def _sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def look(self, class_id: int) -> dict:
        p = self.appearance[class_id]
        s = self._sigmoid
        return {
            "rgb": s(1.2 * p[0:3]),
            "tex": 0.35 * np.tanh(p[3:6]),
            "freq": 0.06 + 0.3 * s(2.0 * p[6]),
            "theta": float(np.arctan2(p[7], p[8])),
            "aspect": float(np.exp(0.6 * np.tanh(p[9]))),
            "power": float(1.2 + 4.0 * s(2.0 * p[10])),
        }

    def render(self, rng: np.random.Generator, size: int):
        """(image uint8 [3, S, S], raw label map uint8 [S, S], instances uint8 [S, S] (0 = none,
        k = k-th object drawn), scene id)."""
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        scene_id = int(rng.integers(len(SCENES)))
        weights, (band_lo, band_hi) = list(SCENES.values())[scene_id]
        bg = self.scene_looks[scene_id]
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * bg["freq"] * (xx * np.cos(bg["theta"]) + yy * np.sin(bg["theta"])) + phase)
        image = bg["rgb"][:, None, None] + bg["tex"][:, None, None] * wave[None]
        label = np.zeros((size, size), dtype=np.uint8)
        instances = np.zeros((size, size), dtype=np.uint8)
        names = list(weights)
        probs = np.array([weights[n] for n in names], dtype=np.float64)
        probs /= probs.sum()
        n_objects = int(rng.integers(2, 5))
        scale = size / 64.0
        drawn = 0
        for _ in range(n_objects):
            cid = CLASS_NAMES.index(names[rng.choice(len(names), p=probs)])
            look = self.look(cid)
            radius = rng.uniform(8, 16) * scale
            aspect = look["aspect"] * np.exp(rng.normal(0, 0.1))
            rx, ry = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
            cx = rng.uniform(0.1, 0.9) * size
            cy = rng.uniform(band_lo, band_hi) * size
            dx, dy = np.abs(xx - cx) / rx, np.abs(yy - cy) / ry
            mask = dx ** look["power"] + dy ** look["power"] <= 1.0
            if not mask.any():
                continue
            rgb = np.clip(look["rgb"] + rng.normal(0, 0.04, 3), 0, 1)
            theta = look["theta"] + rng.normal(0, 0.15)
            stripes = np.sin(2 * np.pi * look["freq"] * (xx * np.cos(theta) + yy * np.sin(theta))
                             + rng.uniform(0, 2 * np.pi))
            obj = rgb[:, None, None] + look["tex"][:, None, None] * stripes[None]
            image = np.where(mask[None], obj, image)
            label[mask] = cid
            drawn += 1
            instances[mask] = drawn
        image = image * rng.uniform(0.85, 1.15) + rng.normal(0, 0.05, image.shape)
        return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), label, instances, scene_id
