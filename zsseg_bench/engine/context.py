"""The run context: what a run gives its method, for training, evaluation and inference alike.

* Batches are moved to the device, normalised there (the method's `input` config) and their
  raw labels mapped through a lookup table: the split's training table (unseen -> ignore) for
  training, its evaluation table for scoring. Methods never see a raw label id.
* Training batches are endless, shuffled and augmented (`batches`, a `BatchStream` from
  stream.py, flipped on the device); evaluation and inference read one pass (`loader`).
* The context writes the run's train_log.jsonl and hands the method the engine's loops:
  `fit`/`run_stage` (loop.py) and `confusion` (evaluate.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from zsseg_bench.engine import loop
from zsseg_bench.engine.distributed import rank_and_world
from zsseg_bench.engine.evaluate import evaluate_confusion
from zsseg_bench.engine.loop import Reporter, StageCache
from zsseg_bench.engine.options import EngineOptions
from zsseg_bench.engine.probe import ProbeClock
from zsseg_bench.engine.stream import BatchStream, collate
from zsseg_bench.engine.transforms import TransformedDataset, transforms_from_config
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import Method, Stage

__all__ = ["RunContext", "TrainBatches", "check_data_config"]


class TrainBatches:
    """Endless augmented training batches on the device, with a state for checkpoints.

    Owns the stage's generator `gen`, shared by the stream (epoch order) and the device-side
    augmentation (flips); with several processes every rank draws the flips of the whole global
    batch and keeps its share, so the augmentation does not depend on the number of ranks."""

    def __init__(self, ctx: "RunContext", stream: BatchStream, gen: torch.Generator, lut: torch.Tensor):
        self.ctx, self.stream, self.gen, self.lut = ctx, stream, gen, lut
        self.device = ctx.device

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = self.ctx.to_device(next(self.stream), self.lut, self.ctx.pass_unseen_labels)
        batch = self.ctx.with_image_labels(batch)
        return self.ctx.augment(batch, self.gen, global_batch=self.stream.batch_size,
                                offset=self.stream.rank * self.stream.local)

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state["stream"])
        self.gen.set_state(state["gen"])


@dataclass
class RunContext:
    """What a run gives its method, in training, evaluation and inference: data on the device,
    seed, log, and the loops to use them. `train_set` is None where nothing trains (prediction,
    bench)."""

    split: object
    train_set: torch.utils.data.Dataset | None
    device: torch.device
    seed: int
    cfg: dict
    reporter: Reporter = field(default_factory=Reporter)
    log_path: object = None  # a pathlib.Path for train_log.jsonl, or None
    run_id: str = ""
    train_indices: np.ndarray | None = None  # after the split's training policy (and without the held-out ones)
    heldout_indices: np.ndarray | None = None  # training images kept out of training (engine.heldout_images)
    pass_unseen_labels: bool = False  # only for methods flagged uses_unseen_labels
    # Weak-shot splits: bool [N_train, K] class presence per training image (datasets/weak_shot.py);
    # training batches carry its novel columns as `novel_present`, the only novel-class information.
    image_labels: np.ndarray | None = None
    val_set: torch.utils.data.Dataset | None = None  # the benchmark's val part, for diagnostic probes only
    current_stage: str = ""  # the stage being trained (its label), set by run_stage
    options: EngineOptions | None = None  # the engine section, parsed once; from cfg when not given

    def __post_init__(self):
        size = max(256, self.split.ignore_index + 1)
        self.train_lut = torch.from_numpy(self.split.lut(train=True, size=size)).to(self.device)
        self.eval_lut = torch.from_numpy(self.split.lut(train=False, size=size)).to(self.device)
        inp = self.cfg["input"]
        self.mean = torch.tensor(inp["mean"], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(inp["std"], device=self.device).view(1, 3, 1, 1)
        self.bgr = inp["bgr"]
        # CPU-side joint transforms of real datasets (crop, scale, warp); None for the synthetic
        # benchmark, whose fixed-size images go to the device as they are.
        self.train_transform, self.eval_transform = transforms_from_config(self.cfg, self.split.ignore_index)
        if self.train_indices is None:
            self.train_indices = np.arange(len(self.train_set) if self.train_set is not None else 0)
        self._log_file = None
        self.log_lines = 0  # lines in train_log.jsonl (a resumed run starts with the earlier run's)
        if self.options is None:
            self.options = EngineOptions.from_cfg(self.cfg)
        self.val_trajectory: list[dict] = []  # probe.py: val scores at stage block boundaries
        self.probe_clock = ProbeClock()
        self.monitor = None  # a monitor.Monitor when the run writes TensorBoard or evaluates periodically

    # ---- data ---------------------------------------------------------------------------------
    def to_device(self, batch: dict, lut: torch.Tensor, with_eval_labels: bool = False) -> dict:
        image = batch["image"].to(self.device, non_blocking=True).float()
        if self.bgr:
            image = image.flip(1)
        image = (image - self.mean) / self.std
        if self.options.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        out = {"image": image, "index": batch["index"], "name": batch["name"]}
        raw = batch["label"].to(self.device, non_blocking=True).long()
        if raw.numel() and (int(raw.max()) >= lut.numel() or int(raw.min()) < 0):
            raise ZsbenchError(f"{batch['name'][0]}: label value {int(raw.max())} is outside the class list "
                               f"{self.split.classes.path.name}; run 'zsbench data check'")
        label = lut[raw]
        if bool((label < 0).any()):
            bad = int(raw[label < 0][0])
            at = int(torch.nonzero((label < 0).flatten(1).any(1))[0])
            raise ZsbenchError(f"{batch['name'][at]}: label value {bad} is not in class list "
                               f"{self.split.classes.path.name} (nor the ignore index {self.split.ignore_index}); "
                               f"run 'zsbench data check' on the dataset")
        out["label"] = label
        if with_eval_labels:
            out["label_all"] = self.eval_lut[raw]
        return out

    def with_image_labels(self, batch: dict) -> dict:
        """Add `novel_present` (bool [B, U]) to a training batch of a weak-shot split."""
        if self.image_labels is not None:
            rows = self.image_labels[batch["index"].numpy()][:, self.split.unseen_mask]
            batch["novel_present"] = torch.from_numpy(rows).to(self.device)
        return batch

    def train_items(self, indices: Sequence[int]) -> dict:
        """Training images `indices` as one batch on the device, through the training data path (the
        training transform, the training label table and, for weak-shot splits, `novel_present`)."""
        items = [self.train_set[int(i)] for i in indices]
        if self.train_transform is not None:
            items = [self.train_transform(it) for it in items]
        return self.with_image_labels(self.to_device(collate(items), self.train_lut, self.pass_unseen_labels))

    def augment(self, batch: dict, gen: torch.Generator, global_batch: int | None = None, offset: int = 0) -> dict:
        """Batch-level augmentation on the device (random horizontal flip per image).

        With several processes, `global_batch` flips are drawn and this rank's batch takes
        those from `offset` on."""
        if not self.cfg["data"]["hflip"]:
            return batch
        n = batch["image"].shape[0]
        flip = (torch.rand(global_batch or n, generator=gen) < 0.5)[offset: offset + n]
        if flip.any():
            f = flip.to(self.device)
            for key in ("image", "label", "label_all"):
                if key in batch:
                    t = batch[key]
                    mask = f.view(-1, *([1] * (t.dim() - 1)))
                    batch[key] = torch.where(mask, t.flip(-1), t)
        return batch

    def loader(self, indices: Sequence[int] | None = None, batch_size: int | None = None, shuffle: bool = True,
               gen: torch.Generator | None = None, drop_last: bool = True, dataset=None, train: bool | None = None):
        """A DataLoader over `indices` of `dataset` (default: the training set and indices).

        `train` (default: `shuffle`) picks the transform: the training one (crop/scale/warp from
        `cfg["data"]`) or the evaluation one (`cfg["eval"]`). Images of different sizes cannot
        be stacked: training then needs a crop or warp, and evaluation runs one image per batch.
        """
        data_cfg = self.cfg["data"]
        train = shuffle if train is None else train
        dataset = dataset if dataset is not None else self.train_set
        indices = self.train_indices if indices is None else indices
        transform = self.train_transform if train else self.eval_transform
        fixed = _batchable(dataset, transform)
        if not fixed and train:
            raise _unbatchable(dataset)
        if transform is not None:
            dataset = TransformedDataset(dataset, transform)
        batch_size = batch_size or data_cfg["batch_size"]
        if not fixed:
            batch_size = 1
        subset = torch.utils.data.Subset(dataset, list(map(int, indices)))
        workers = data_cfg["num_workers"]
        return torch.utils.data.DataLoader(
            subset, batch_size=min(batch_size, len(subset)), shuffle=shuffle, drop_last=drop_last and shuffle,
            collate_fn=collate, generator=gen, num_workers=workers, pin_memory=self._pin_memory(),
            persistent_workers=workers > 0 and shuffle,
        )

    def batches(self, gen: torch.Generator, indices=None, lut: torch.Tensor | None = None,
                batch_size: int | None = None) -> TrainBatches:
        """Endless shuffled, augmented training batches on the device (this rank's share)."""
        lut = self.train_lut if lut is None else lut
        indices = self.train_indices if indices is None else indices
        if len(indices) == 0:
            raise ZsbenchError(f"no training images left for split {self.split.name} after its training policy "
                               f"({self.split.train_policy})")
        data_cfg = self.cfg["data"]
        dataset = self.train_set
        if not _batchable(dataset, self.train_transform):
            raise _unbatchable(dataset)
        if self.train_transform is not None:
            # Random crops and scales draw from the global RNGs; the stream reads every item under
            # its own seed, so they are the same whatever the workers, processes or resume point.
            dataset = TransformedDataset(dataset, self.train_transform)
        rank, world = rank_and_world()
        stream = BatchStream(dataset, indices, batch_size or data_cfg["batch_size"], gen,
                             num_workers=data_cfg["num_workers"], pin_memory=self._pin_memory(), rank=rank, world=world)
        return TrainBatches(self, stream, gen, lut)

    def _pin_memory(self) -> bool:
        """`data.pin_memory`, or where it is unset (None: DataOptions leaves it out of the config), on CUDA."""
        pin = self.cfg["data"].get("pin_memory")
        return self.device.type == "cuda" if pin is None else pin

    # ---- log ---------------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.log_path is None:
            return
        if self._log_file is None:
            self._log_file = open(self.log_path, "a", buffering=1)
        self._log_file.write(json.dumps(record) + "\n")
        self.log_lines += 1
        if self.monitor is not None:
            self.monitor.log(record)

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # ---- the engine's loops, for the method ---------------------------------------------------
    def run_stage(self, method: Method, stage: Stage, stage_index: int, indices=None, lut=None,
                  label: str = "", checkpoints=None, n_stages: int = 1, restore: bool = False) -> None:
        """Train `method` through one stage (loop.run_stage)."""
        loop.run_stage(self, method, stage, stage_index, indices, lut, label=label, checkpoints=checkpoints,
                       n_stages=n_stages, restore=restore)

    def fit(self, method: Method, cache: StageCache | None = None, cache_key_extra: str = "",
            indices=None, lut=None, label_prefix: str = "", checkpoints=None) -> dict:
        """Run all stages of `method` (loop.fit); returns what was reused."""
        return loop.fit(self, method, cache, cache_key_extra, indices, lut, label_prefix, checkpoints)

    def confusion(self, method: Method, dataset, lut: torch.Tensor, num_classes: int, indices=None,
                  score_fn: Callable | None = None) -> np.ndarray:
        """Confusion matrix of `method` on `dataset` (labels mapped by `lut`)."""
        return evaluate_confusion(method, self, dataset, lut, num_classes, indices, score_fn)


def _batchable(dataset, transform) -> bool:
    """Whether the items (after `transform`) all have one size, so that they can be stacked."""
    # "unknown": a wrapper that does not say; treated as fixed-size (the pre-transform behaviour).
    native = getattr(dataset, "fixed_size", "unknown")
    return native is not None or (transform is not None and transform.fixed_size is not None)


def _unbatchable(dataset) -> ZsbenchError:
    return ZsbenchError(f"training images of {getattr(dataset, 'name', 'this dataset')} differ in size and cannot be "
                        f"batched; set data.crop (e.g. --set data.crop=321) or data.warp")


def check_data_config(cfg: dict, split, train_set) -> None:
    """The data/eval transform settings are valid and training batches can be formed (before a run starts)."""
    train_transform, _ = transforms_from_config(cfg, split.ignore_index)
    if not _batchable(train_set, train_transform):
        raise _unbatchable(train_set)
