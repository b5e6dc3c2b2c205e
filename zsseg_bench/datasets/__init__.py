"""Datasets: the registry and one module per dataset family."""

from zsseg_bench.datasets import (  # noqa: F401,E402  (register the real datasets)
    ade20k,
    coco,
    cocostuff,
    context,
    synthetic,  # noqa: F401  (registers "synthetic")
    voc,
)
from zsseg_bench.datasets.base import DATASETS, SegDataset

__all__ = ["DATASETS", "SegDataset", "build_dataset"]


def build_dataset(name: str, part: str, root: str | None = None, cfg: dict | None = None) -> SegDataset:
    return DATASETS.get(name)(part, root, cfg or {})
