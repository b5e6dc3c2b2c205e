"""The built-in synthetic benchmark: shapes in context, generated from a world seed, no download.

Two versions, chosen with `dataset.version` (default 2): version 1 (world_v1.py, kept
byte-identical for the results made with it) and version 2 (world_v2.py: appearance that the
embedding predicts only in part and that depends on the scene, objects that touch, auxiliary
classes). `dataset.world` is the benchmark seed; `dataset.eval_part` picks the part a run is
scored on (`test`, or `val` while choosing settings). auxiliary.py builds the auxiliary-class
images a shared initialisation is trained on; stats.py measures the knobs
(`zsbench data stats synthetic`). The README section "The synthetic benchmark" says why.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from zsseg_bench.catalog.schema import NonNegativeInt, PositiveInt, declare_options
from zsseg_bench.datasets.base import DatasetOptions, SegDataset, register_dataset
from zsseg_bench.datasets.synthetic.auxiliary import AuxData, aux_content_key, aux_dataset
from zsseg_bench.datasets.synthetic.generate import VERSIONS, render_set, world
from zsseg_bench.datasets.synthetic.world_v1 import (
    CLASS_NAMES,
    PARTS,
    SCENES,
    SUPERCLASSES,
    VERSION,
    SyntheticBenchmark,
)
from zsseg_bench.datasets.synthetic.world_v2 import AUX_NAMES, WorldV2

__all__ = ["SyntheticBenchmark", "WorldV2", "SyntheticSegmentation", "SyntheticOptions", "CLASS_NAMES",
           "SUPERCLASSES", "SCENES", "VERSION", "VERSIONS", "DEFAULT_VERSION", "AUX_NAMES", "AuxData",
           "aux_dataset", "aux_content_key"]

DEFAULT_VERSION = 2


class SyntheticSegmentation(SegDataset):
    name = "synthetic"
    class_list = "synthetic"
    random_transforms = False  # items are fixed tensors (the engine need not seed each read)

    def __init__(self, part: str = "train", count: int = 1500, size: int = 64, seed: int = 0, embed_dim: int = 32,
                 benchmark_version: int = 2):
        if part not in PARTS:
            raise ValueError(f"part must be one of {sorted(PARTS)}, not {part!r}")
        if not 16 <= size <= 128:
            raise ValueError(f"synthetic images are 16 to 128 px, not {size}")
        self.part, self.size, self.seed, self.embed_dim = part, size, seed, embed_dim
        self.benchmark_version = benchmark_version
        self.version = VERSIONS[benchmark_version]  # the generator version, in run records
        self.fixed_size = (size, size)
        self.images, self.labels = render_set(benchmark_version, seed, part, count, size, embed_dim)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": self.labels[index].long(), "index": index,
                "name": self.image_name(index)}

    def raw_label(self, index: int) -> np.ndarray:
        return self.labels[index].numpy()

    def image_name(self, index: int) -> str:
        return f"synthetic/{self.part}/{index:05d}"

    def class_embeddings(self) -> np.ndarray:
        return world(self.benchmark_version, self.seed, self.embed_dim).embeddings


class SyntheticOptions(DatasetOptions):
    # Written into every run record even at their defaults (which benchmark a number is on).
    recorded: ClassVar[tuple[str, ...]] = ("version", "world", "eval_part")
    version: Literal[1, 2] = DEFAULT_VERSION  # 1: the original benchmark; 2: README, "The synthetic benchmark"
    world: NonNegativeInt = 0  # the benchmark seed: class embeddings, appearance, images
    eval_part: Literal["test", "val"] = "test"  # the part a run is scored on: val while choosing settings
    size: Annotated[int, Field(ge=16, le=128)] = 64  # image side in px (objects scale with it)
    n_train: PositiveInt = 1500
    n_test: PositiveInt = 500
    n_val: PositiveInt = 300
    embed_dim: PositiveInt = 32

    @classmethod
    def from_record(cls, options: dict, version: str) -> dict:
        # Records made before `version` was an option are all of version 1 (generator version "1").
        return {"version": 1 if version == VERSION else DEFAULT_VERSION, **options}

    @classmethod
    def describe(cls, options: dict) -> str:
        scored = ", scored on val" if options.get("eval_part") == "val" else ""
        return f"v{options.get('version', DEFAULT_VERSION)} world {options.get('world', 0)}{scored}"


@register_dataset("synthetic", default_split="synthetic-9-3", palette_by_name="synthetic", synthetic=True)
@declare_options(SyntheticOptions)
def build_synthetic(part: str, root: str | None, cfg: dict) -> SyntheticSegmentation:
    """`part` "test" is the evaluation part: the test images, or the val images with eval_part: val."""
    if part == "test":
        part = cfg["eval_part"]
    counts = {"train": cfg["n_train"], "test": cfg["n_test"], "val": cfg["n_val"]}
    return SyntheticSegmentation(part, count=counts[part], size=cfg["size"], seed=cfg["world"],
                                 embed_dim=cfg["embed_dim"], benchmark_version=cfg["version"])
