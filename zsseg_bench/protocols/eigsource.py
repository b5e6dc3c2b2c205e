"""Where a run's eigen-masks come from: computed from the images, a cache file, or released PNGs.

* computed (`fusion.eigs` unset): the synthetic world's colour/position eigen-masks (eigs.py), from
  the evaluation batch itself, at the label's resolution.
* a `.npz` written by `zsbench sazs eigs`: `names` (image names), `shapes` and `bits` (packed bool
  masks, one [K, H, W] per image), resized (nearest) to the label if needed.
* a folder of the official release's PNGs: `<image stem>_k<j>.png`, j = 0..K-1, 255 = foreground
  (SAZS's `pascal_k5/`, `coco_k5/`); a missing file is one error line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.protocols.eigs import masks_from_images

__all__ = ["EigenSource", "save_masks", "load_masks", "compute_masks"]


def save_masks(path: Path, names: list[str], masks: list[np.ndarray], meta: dict) -> None:
    """Write one bool [K, H, W] array per image (sizes may differ) as packed bits, atomically (a
    temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    shapes = np.array([m.shape for m in masks], dtype=np.int64).reshape(-1, 3)
    bits = np.packbits(np.concatenate([m.ravel() for m in masks])) if masks else np.zeros(0, np.uint8)
    try:
        np.savez_compressed(tmp, names=np.array(names), shapes=shapes, bits=bits,
                            meta=np.array(json.dumps(meta, sort_keys=True)))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_masks(path: Path) -> tuple[list[str], list[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            shapes = f["shapes"]
            sizes = shapes.prod(1)
            flat = np.unpackbits(f["bits"], count=int(sizes.sum())).astype(bool)
            ends = np.cumsum(sizes)
            masks = [flat[e - s:e].reshape(shape) for e, s, shape in zip(ends, sizes, shapes)]
            return [str(n) for n in f["names"]], masks
    except (OSError, ValueError, KeyError) as exc:
        raise ZsbenchError(f"{path}: not an eigen-mask file from 'zsbench sazs eigs' ({type(exc).__name__})") from None


def _resized(masks: torch.Tensor, size) -> torch.Tensor:
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks.float().unsqueeze(0), size=tuple(size), mode="nearest")[0] > 0.5


class EigenSource:
    """`masks(batch, names, size)` -> bool [B, K, H, W] for a batch of evaluation images."""

    def __init__(self, spec: str | None, k: int = 5, stride: int = 4):
        self.spec, self.k, self.stride = spec, k, stride
        self._table: dict[str, np.ndarray] | None = None
        if spec:
            path = Path(spec).expanduser()
            if path.is_file():
                names, masks = load_masks(path)
                self._table = {n: m for n, m in zip(names, masks)}
            elif not path.is_dir():
                raise ZsbenchError(f"fusion.eigs {spec}: no such file or folder; give a .npz from 'zsbench sazs eigs' "
                                   f"or the folder of released <image>_k<j>.png masks")
            self.path = path

    def describe(self) -> str:
        if not self.spec:
            return f"computed (colour/position features, stride {self.stride}, K={self.k})"
        return f"{'cache' if self._table is not None else 'released PNGs'} {self.spec}"

    def masks(self, images: torch.Tensor, names: list[str], size) -> torch.Tensor:
        if not self.spec:
            return masks_from_images(images, tuple(size), self.k, self.stride)
        return torch.stack([_resized(self._one(n), size) for n in names]).to(images.device)

    def _one(self, name: str) -> torch.Tensor:
        if self._table is not None:
            if name not in self._table:
                raise ZsbenchError(f"{self.spec}: no eigen-masks for image {name!r}; recompute with 'zsbench sazs eigs'")
            return torch.from_numpy(self._table[name][: self.k])
        from PIL import Image

        stem = Path(name).stem
        files = [self.path / f"{stem}_k{j}.png" for j in range(self.k)]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise ZsbenchError(f"{missing[0]}: eigen-mask missing (need {stem}_k0..k{self.k - 1}.png in {self.path})")
        return torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("L")) > 127 for f in files]))


def compute_masks(dataset, k: int = 5, stride: int = 4, batch: int = 32, limit: int | None = None,
                  features=None, progress=None) -> tuple[list[str], list[np.ndarray]]:
    """Eigen-masks of every image of `dataset` (or the first `limit`) at its label's resolution:
    colour/position features by default, or `features(images) -> (affinity, grid)` (a ViT's)."""
    from zsseg_bench.protocols.eigs import eigen_masks

    n = len(dataset) if limit is None else min(limit, len(dataset))
    names, out = [], []
    fixed = getattr(dataset, "fixed_size", None) is not None
    step = batch if fixed else 1  # images of different sizes go one by one
    for start in range(0, n, step):
        items = [dataset[i] for i in range(start, min(n, start + step))]
        images = torch.stack([it["image"].float() for it in items])
        size = tuple(items[0]["label"].shape[-2:])
        if features is None:
            masks = masks_from_images(images, size, k, stride)
        else:
            affinity, grid = features(images)
            masks = eigen_masks(affinity, grid, size, k)
        names += [it["name"] for it in items]
        out += list(masks.numpy())
        if progress is not None:
            progress(len(items))
    return names, out
