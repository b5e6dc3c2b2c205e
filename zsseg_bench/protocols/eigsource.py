"""Where a run's eigen-masks come from: computed from the images, a cache file, or released PNGs.

* computed (`fusion.eigs` unset): the synthetic world's colour/position eigen-masks (eigs.py), from
  the evaluation batch itself, at the label's resolution.
* a `.npz` written by `zsbench sazs eigs`: `names` (image names) and `bits` (packed bool masks
  [N, K, H, W] with `shape`), masks resized (nearest) to the label if needed.
* a folder of the official release's PNGs: `<image stem>_k<j>.png`, j = 0..K-1, 255 = foreground
  (SAZS's `pascal_k5/`, `coco_k5/`); a missing file is one error line naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.protocols.eigs import masks_from_images

__all__ = ["EigenSource", "save_masks", "load_masks"]


def save_masks(path: Path, names: list[str], masks: np.ndarray, meta: dict) -> None:
    """Write [N, K, H, W] bool masks as packed bits (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, names=np.array(names), shape=np.array(masks.shape), bits=np.packbits(masks.ravel()),
                        meta=np.array(repr(sorted(meta.items()))))
    tmp.replace(path)


def load_masks(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            shape = tuple(int(x) for x in f["shape"])
            masks = np.unpackbits(f["bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
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
