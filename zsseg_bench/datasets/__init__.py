"""Datasets: the registry and one module per dataset family."""

from .base import DATASETS, SegDataset
from . import synthetic  # noqa: F401  (registers "synthetic")
from . import voc, context, cocostuff, ade20k, coco  # noqa: F401,E402  (register the real datasets)

__all__ = ["DATASETS", "SegDataset", "build_dataset"]


def build_dataset(name: str, part: str, root: str | None = None, cfg: dict | None = None) -> SegDataset:
    return DATASETS.get(name)(part, root, cfg or {})
