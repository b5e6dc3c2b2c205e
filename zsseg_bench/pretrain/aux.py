"""Auxiliary data for the shared initialisation: classes of the synthetic world that no split uses.

The official codes start from a DeepLab pretrained on other classes (ImageNet, COCO). The
synthetic analogue is the auxiliary part of a v2 world (`datasets/synthetic/auxiliary.py`):
classes drawn like the benchmark's (same appearance machinery, scenes and illuminants) that no
split names. Their background pixels are ignored here too: the background is a class of the
splits (seen in synthetic-bg-9-3), so the pretraining learns the auxiliary objects only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zsseg_bench.datasets.synthetic.auxiliary import aux_content_key, aux_dataset
from zsseg_bench.errors import ZsbenchError

__all__ = ["AuxSet", "aux_set", "aux_spec", "AUX_IGNORE"]

AUX_IGNORE = 255


@dataclass
class AuxSet:
    images: torch.Tensor  # uint8 [N, 3, S, S]
    labels: torch.Tensor  # int64 [N, S, S]: 0..num_classes-1 (the auxiliary classes), AUX_IGNORE elsewhere
    num_classes: int


def _args(options: dict, count: int) -> dict:
    return {"world": options["world"], "version": options["version"], "n_images": count, "size": options["size"],
            "embed_dim": options["embed_dim"]}


def aux_spec(options: dict, count: int) -> dict:
    """What the `count` auxiliary images of the run's world depend on (hashed with the schedule)."""
    try:
        return aux_content_key(**_args(options, count))
    except ValueError:
        raise ZsbenchError(f"backbone.init: shared pretrains on the auxiliary classes of synthetic version 2; "
                           f"dataset.version {options['version']} has none. Add --set backbone.init=null to train "
                           f"from scratch (the protocol of the version-1 results)") from None


def aux_set(options: dict, count: int) -> AuxSet:
    data = aux_dataset(**_args(options, count))
    labels = data.labels.long() - 1  # background (0) -> -1 -> ignored; auxiliary class k -> k - 1
    labels[labels < 0] = AUX_IGNORE
    return AuxSet(data.images, labels, len(data.class_names) - 1)
