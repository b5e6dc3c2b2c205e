"""Joint image/mask transforms for real datasets, run in the DataLoader workers.

Images are uint8 [3, H, W] RGB tensors and stay uint8 (resizing uint8 directly is ~8x faster
than through float); masks are integer [H, W] tensors of raw label ids. Normalisation is not
done here: the engine does it on the device from the method's `input` config.

* Images are resized bilinearly with half-pixel centres and no antialiasing (what OpenCV's
  INTER_LINEAR does in the official codes); masks only ever with nearest neighbour, by index
  lookup at the same pixel centres, so no new label value can appear.
* ``warp``: resize to a fixed size ignoring the aspect ratio (SPNet/CaGNet's 513x513
  ``WARP_IMAGE``). ``scale``: a random factor U(lo, hi). ``crop``: a random crop; images smaller
  than ``pad_to`` (default: the crop) are first padded, the image with the mean colour (zero
  after normalisation, as the Caffe-style codes pad) and the mask with the ignore index.
  ``pad_mode``: ``symmetric`` (CaGNet: half of the padding on each side) or ``bottom_right``.
* Evaluation: ``warp`` (image and mask, as SPNet/CaGNet score), ``short_side`` (ZS3Net's FixScale:
  the short side to N pixels, aspect kept), and ``label_at: original`` to resize only the image
  and score against the untouched mask (the engine upsamples the scores to the mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["resize_image", "resize_label_at_centres", "label_maps_at", "pad_pair", "crop_pair", "hflip_pair",
           "TrainTransform", "EvalTransform", "TransformedDataset", "transforms_from_config", "pad_fill"]


def _size2(value) -> tuple[int, int] | None:
    """A validated size (N, [height, width], or None/0: none) as (height, width) or None."""
    if not value:
        return None
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a uint8 [3, H, W] image (half-pixel centres, no antialiasing)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=False)[0]


def _centres(n_in: int, n_out: int) -> torch.Tensor:
    idx = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out)).floor().long()
    return idx.clamp_(0, n_in - 1)


def resize_label_at_centres(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an integer [H, W] mask, sampled at the output pixels' centres:
    every output value is an input value.

    Source pixel of output (i, j) = floor((i + 0.5) * H / H'), the same for both dtypes: uint8 masks
    go through torch's "nearest-exact" kernel (fast), others through two index gathers.
    """
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    if label.dtype == torch.uint8:
        return F.interpolate(label[None, None], size=size, mode="nearest-exact")[0, 0]
    h, w = label.shape[-2:]
    return label.index_select(0, _centres(h, size[0])).index_select(1, _centres(w, size[1]))


def label_maps_at(label: torch.Tensor, size) -> torch.Tensor:
    """A batch of label maps [B, H, W] at `size` with torch's "nearest" (source index floor(i * H / h)),
    as the official codes bring labels to feature resolution for their losses and their
    feature-resolution evaluation. Unlike `resize_label_at_centres` (pixel centres), so kept
    separate: the official numbers depend on which pixels survive. Unchanged when already at `size`."""
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    return F.interpolate(label[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()


def pad_pair(image, label, size: tuple[int, int], fill: tuple[int, int, int], ignore_index: int,
             mode: str = "symmetric"):
    """Pad image (with `fill`) and mask (with `ignore_index`) up to at least `size`."""
    h, w = label.shape[-2:]
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph == 0 and pw == 0:
        return image, label
    top, left = (ph // 2, pw // 2) if mode == "symmetric" else (0, 0)
    new_img = torch.empty((3, h + ph, w + pw), dtype=image.dtype)
    new_img[:] = torch.tensor(fill, dtype=image.dtype).view(3, 1, 1)
    new_img[:, top: top + h, left: left + w] = image
    new_lbl = torch.full((h + ph, w + pw), ignore_index, dtype=label.dtype)
    new_lbl[top: top + h, left: left + w] = label
    return new_img, new_lbl


def crop_pair(image, label, size: tuple[int, int], top: int, left: int):
    return image[:, top: top + size[0], left: left + size[1]], label[top: top + size[0], left: left + size[1]]


def hflip_pair(image, label):
    return image.flip(-1), label.flip(-1)


def pad_fill(input_cfg: dict, how="mean") -> tuple[int, int, int]:
    """RGB uint8 padding colour: the method's mean (zero after normalisation) or a given value
    (0..255, as DataOptions.pad_image checked)."""
    if how != "mean":
        return (how, how, how)
    mean = list(input_cfg["mean"])
    if input_cfg["bgr"]:
        mean = mean[::-1]  # the config's mean is in BGR order; the tensors here are RGB
    return tuple(int(round(min(max(m, 0), 255))) for m in mean)


@dataclass
class TrainTransform:
    """Warp -> random scale -> pad -> random crop (-> flip), each optional."""

    warp: tuple[int, int] | None = None
    scale: tuple[float, float] | None = None
    crop: tuple[int, int] | None = None
    pad_to: tuple[int, int] | None = None
    pad_mode: str = "symmetric"
    fill: tuple[int, int, int] = (0, 0, 0)
    ignore_index: int = 255
    flip: bool = False  # the engine flips on the device instead (RunContext.augment)

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        return self.crop or (self.warp if self.scale is None else None)

    def __call__(self, item: dict) -> dict:
        image, label = item["image"], item["label"]
        dtype = label.dtype
        if dtype != torch.uint8 and self.ignore_index < 256 and label.numel() and 0 <= int(label.min()) \
                and int(label.max()) < 256:
            label = label.to(torch.uint8)  # 8x less memory traffic and the fast resize kernel
        if self.warp is not None:
            image, label = resize_image(image, self.warp), resize_label_at_centres(label, self.warp)
        if self.scale is not None:
            lo, hi = self.scale
            factor = lo + (hi - lo) * float(torch.rand(()))
            h, w = label.shape[-2:]
            size = (max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5)))
            image, label = resize_image(image, size), resize_label_at_centres(label, size)
        if self.crop is not None:
            target = self.pad_to or self.crop
            target = (max(target[0], self.crop[0]), max(target[1], self.crop[1]))
            image, label = pad_pair(image, label, target, self.fill, self.ignore_index, self.pad_mode)
            h, w = label.shape[-2:]
            top = int(torch.randint(0, h - self.crop[0] + 1, ()))
            left = int(torch.randint(0, w - self.crop[1] + 1, ()))
            image, label = crop_pair(image, label, self.crop, top, left)
        if self.flip and float(torch.rand(())) < 0.5:
            image, label = hflip_pair(image, label)
        return {**item, "image": image.contiguous(), "label": label.to(dtype).contiguous()}


@dataclass
class EvalTransform:
    warp: tuple[int, int] | None = None
    short_side: int | None = None
    label_at: str = "input"  # "input": mask resized with the image; "original": mask untouched

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        return self.warp if self.warp is not None and self.label_at == "input" else None

    def _size(self, h: int, w: int) -> tuple[int, int]:
        if self.warp is not None:
            return self.warp
        s = self.short_side / min(h, w)
        return (int(math.floor(h * s + 0.5)), int(math.floor(w * s + 0.5)))

    def __call__(self, item: dict) -> dict:
        label = item["label"]
        size = self._size(*label.shape[-2:])
        out = {**item, "image": resize_image(item["image"], size).contiguous()}
        if self.label_at == "input":
            small = label.numel() and 0 <= int(label.min()) and int(label.max()) < 256
            resized = resize_label_at_centres(label.to(torch.uint8) if small else label, size)
            out["label"] = resized.to(label.dtype).contiguous()
        return out


class TransformedDataset(torch.utils.data.Dataset):
    """`dataset[i]` passed through `transform` (picklable, so it runs in DataLoader workers)."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.transform(self.dataset[index])


def transforms_from_config(cfg: dict, ignore_index: int) -> tuple[TrainTransform | None, EvalTransform | None]:
    """The training and evaluation transforms a validated config asks for (None: use items as they
    are). Its values were checked by the schema (engine/options.py: DataOptions, EvalOptions)
    when the run was prepared, so they are only converted here."""
    data, ev = cfg["data"], cfg["eval"]
    train = None
    if any(data[k] for k in ("warp", "scale", "crop")):
        scale = data["scale"]
        train = TrainTransform(warp=_size2(data["warp"]), scale=None if scale is None else tuple(map(float, scale)),
                               crop=_size2(data["crop"]), pad_to=_size2(data["pad_to"]), pad_mode=data["pad_mode"],
                               fill=pad_fill(cfg["input"], data["pad_image"]), ignore_index=ignore_index)
    evaluate = None
    warp, short = _size2(ev["warp"]), ev["short_side"]
    if warp is not None or short:
        evaluate = EvalTransform(warp=warp, short_side=short or None, label_at=ev["label_at"])
    return train, evaluate
