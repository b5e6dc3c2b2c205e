"""Datasets: the registry, one module per dataset family, and each family's registered facts."""

from zsseg_bench.datasets import (  # noqa: F401,E402  (each module registers its datasets)
    ade20k,
    coco,
    cocostuff,
    context,
    synthetic,
    voc,
)
from zsseg_bench.datasets.base import DATASETS, DatasetInfo, SegDataset, dataset_info, default_split

__all__ = ["DATASETS", "DatasetInfo", "SegDataset", "build_dataset", "dataset_info", "default_split"]


def build_dataset(name: str, part: str, root: str | None = None, cfg: dict | None = None) -> SegDataset:
    return DATASETS.get(name)(part, root, cfg or {})
