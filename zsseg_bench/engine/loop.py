"""Training and evaluation loops. They know the `Method` interface and nothing about any method.

* Batches are moved to the device, normalised there (the method's `input` config) and their
  raw labels mapped through a lookup table: the split's training table (unseen -> ignore) for
  training, its evaluation table for scoring. Methods never see a raw label id.
* Each stage is seeded from (run seed, stage index), so a stage's result does not depend on
  what ran before it in the process; this is what makes reusing stages (spnet-c reusing
  spnet's training) and resuming exact.
* A step returns named losses; `Stage.updates` routes each loss to one optimizer. With several
  updates, all gradients are computed before any optimizer steps (PyTorch >= 1.5 forbids the
  official GAN codes' step-then-backward order through already-updated weights).
* A non-finite loss stops the run with a message naming the loss, stage and iteration, and
  the last good checkpoint (a checkpoint is only written when every weight is finite).
* Training batches come from a `BatchStream` (stream.py) whose position is saved with the
  optimizer, scheduler and RNG states every `engine.checkpoint_every` iterations (resume.py),
  so a resumed run continues exactly where the interrupted one was.
* Numerics and speed options (`engine:` precision, TF32, channels-last, torch.compile,
  deterministic mode) are in engine_options.py; several processes (distributed.py) split each
  batch and average gradients, and evaluation shards the images.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zsseg_bench.engine.distributed import all_ranks_true, all_reduce_gradients, rank_and_world, shard
from zsseg_bench.engine.options import EngineOptions, autocast
from zsseg_bench.engine.stream import BatchStream, collate
from zsseg_bench.engine.transforms import TransformedDataset, label_maps_at, transforms_from_config
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import Method, Stage
from zsseg_bench.metrics import ConfusionMeter

__all__ = ["TrainContext", "Reporter", "seed_everything", "evaluate_confusion", "StageCache", "TrainBatches",
           "autocast", "apply_updates", "check_data_config"]


class Reporter:
    """Progress callbacks; the CLI supplies a rich implementation, tests use this silent one."""

    def stage_start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1, info: str = "") -> None: ...

    def stage_end(self) -> None: ...

    def message(self, text: str) -> None: ...


def seed_everything(seed: int, *salt: int) -> torch.Generator:
    """Seed torch and numpy from (seed, *salt); return a torch generator with the same seed."""
    mixed = int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0])
    torch.manual_seed(mixed)
    np.random.seed(mixed % (2**32))
    gen = torch.Generator()
    gen.manual_seed(mixed)
    return gen


_collate = collate  # the first engine version's name


class TrainBatches:
    """Endless augmented training batches on the device, with a state for checkpoints.

    Owns the stage's generator `gen`, shared by the stream (epoch order) and the device-side
    augmentation (flips); with several processes every rank draws the flips of the whole global
    batch and keeps its share, so the augmentation does not depend on the number of ranks."""

    def __init__(self, ctx: "TrainContext", stream: BatchStream, gen: torch.Generator, lut: torch.Tensor):
        self.ctx, self.stream, self.gen, self.lut = ctx, stream, gen, lut
        self.device = ctx.device

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = self.ctx.to_device(next(self.stream), self.lut, self.ctx.pass_unseen_labels)
        return self.ctx.augment(batch, self.gen, global_batch=self.stream.batch_size,
                                offset=self.stream.rank * self.stream.local)

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state["stream"])
        self.gen.set_state(state["gen"])


class StageCache:
    """In-memory weights after a prefix of stages, keyed by signature (one `zsbench run`)."""

    def __init__(self):
        self._store: dict[str, tuple[dict, str]] = {}

    def get(self, key: str):
        return self._store.get(key)

    def put(self, key: str, state: dict, source: str) -> None:
        self._store[key] = ({k: v.detach().clone() for k, v in state.items()}, source)


@dataclass
class TrainContext:
    """What a run gives its method: data, device, seed and the loops to use them."""

    split: object
    train_set: torch.utils.data.Dataset
    device: torch.device
    seed: int
    cfg: dict
    reporter: Reporter = field(default_factory=Reporter)
    log_path: object = None  # a pathlib.Path for train_log.jsonl, or None
    run_id: str = ""
    train_indices: np.ndarray | None = None  # after the split's training policy
    pass_unseen_labels: bool = False  # only for methods flagged uses_unseen_labels

    def __post_init__(self):
        size = max(256, self.split.ignore_index + 1)
        self.train_lut = torch.from_numpy(self.split.lut(train=True, size=size)).to(self.device)
        self.eval_lut = torch.from_numpy(self.split.lut(train=False, size=size)).to(self.device)
        inp = self.cfg.get("input", {})
        self.mean = torch.tensor(inp.get("mean", [127.5] * 3), device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(inp.get("std", [64.0] * 3), device=self.device).view(1, 3, 1, 1)
        self.bgr = bool(inp.get("bgr", False))
        # CPU-side joint transforms of real datasets (crop, scale, warp); None for the synthetic
        # benchmark, whose fixed-size images go to the device as they are.
        self.train_transform, self.eval_transform = transforms_from_config(self.cfg, self.split.ignore_index)
        if self.train_indices is None:
            self.train_indices = np.arange(len(self.train_set))
        self._log_file = None
        self.log_lines = 0  # lines in train_log.jsonl (a resumed run starts with the earlier run's)
        self.options = EngineOptions.from_cfg(self.cfg)

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

    def augment(self, batch: dict, gen: torch.Generator, global_batch: int | None = None, offset: int = 0) -> dict:
        """Batch-level augmentation on the device (random horizontal flip per image).

        With several processes, `global_batch` flips are drawn and this rank's batch takes
        those from `offset` on."""
        if not self.cfg.get("data", {}).get("hflip", True):
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
        data_cfg = self.cfg.get("data", {})
        train = shuffle if train is None else train
        dataset = dataset if dataset is not None else self.train_set
        indices = self.train_indices if indices is None else indices
        transform = self.train_transform if train else self.eval_transform
        fixed = _batchable(dataset, transform)
        if not fixed and train:
            raise _unbatchable(dataset)
        if transform is not None:
            dataset = TransformedDataset(dataset, transform)
        batch_size = batch_size or data_cfg.get("batch_size", 16)
        if not fixed:
            batch_size = 1
        subset = torch.utils.data.Subset(dataset, list(map(int, indices)))
        workers = int(data_cfg.get("num_workers", 0))
        return torch.utils.data.DataLoader(
            subset, batch_size=min(batch_size, len(subset)), shuffle=shuffle, drop_last=drop_last and shuffle,
            collate_fn=_collate, generator=gen, num_workers=workers,
            pin_memory=bool(data_cfg.get("pin_memory", self.device.type == "cuda")),
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
        data_cfg = self.cfg.get("data", {})
        dataset = self.train_set
        if not _batchable(dataset, self.train_transform):
            raise _unbatchable(dataset)
        if self.train_transform is not None:
            # Random crops and scales draw from the global RNGs; the stream reads every item under
            # its own seed, so they are the same whatever the workers, processes or resume point.
            dataset = TransformedDataset(dataset, self.train_transform)
        rank, world = rank_and_world()
        stream = BatchStream(dataset, indices, batch_size or data_cfg.get("batch_size", 16), gen,
                             num_workers=int(data_cfg.get("num_workers", 0)),
                             pin_memory=bool(data_cfg.get("pin_memory", self.device.type == "cuda")),
                             rank=rank, world=world)
        return TrainBatches(self, stream, gen, lut)

    # ---- training ---------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.log_path is None:
            return
        if self._log_file is None:
            self._log_file = open(self.log_path, "a", buffering=1)
        self._log_file.write(json.dumps(record) + "\n")
        self.log_lines += 1

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def run_stage(self, method: Method, stage: Stage, stage_index: int, indices=None, lut=None,
                  label: str = "", checkpoints=None, n_stages: int = 1, restore: bool = False) -> None:
        """Train `method` through one stage; with `restore`, continue it from `checkpoints.resume`."""
        gen = seed_everything(self.seed, 1000 + stage_index)
        if indices is None and stage.train_images == "all":
            indices = np.arange(len(self.train_set))
        elif stage.train_images not in ("split", "all"):
            raise ZsbenchError(f"stage {stage.name!r}: train_images must be 'split' or 'all', "
                               f"not {stage.train_images!r}")
        method.on_stage_start(stage, self)
        optimizers = method.configure_optimizers(stage)
        data = self.batches(gen, indices, lut, stage.batch_size)
        log_every = int(self.cfg.get("log_every", 50))
        running: dict[str, torch.Tensor] = {}
        n_running = 0
        start = time.perf_counter()
        batch, first = None, 0
        if restore:
            first, batch = checkpoints.restore(method, optimizers, data)
            self.reporter.message(f"resumed stage '{stage.name}' at iteration {first}")
        self.reporter.stage_start(label or stage.name, stage.iterations)
        self.reporter.advance(first)
        for it in range(first, stage.iterations):
            if stage.uses_batch is None or stage.uses_batch(it) or batch is None:
                batch = next(data)
            method.train()
            with autocast(self.device, self.options.precision):
                losses = method.training_step(batch, stage, it)
            if not losses:
                self.reporter.advance(1)
                continue
            finite = torch.stack([v.detach().float() for v in losses.values()]).isfinite()
            if not all_ranks_true(bool(finite.all()), self.device):
                bad = (~finite).nonzero()
                name = list(losses)[int(bad[0])] if len(bad) else list(losses)[0]
                value = float(losses[name].detach())
                last = checkpoints.describe_last() if checkpoints is not None else "no checkpoints in this stage"
                raise ZsbenchError(f"loss '{name}' is {value} at iteration {it + 1} of stage '{stage.name}' "
                                   f"(run {self.run_id or 'unnamed'}); the run stopped there; {last}; lower the "
                                   f"learning rate or check the inputs", exit_code=1)
            apply_updates(losses, stage, optimizers)
            for _, sched in optimizers.values():
                if sched is not None:
                    sched.step()
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + v.detach().float()
            n_running += 1
            if (it + 1) % log_every == 0 or it + 1 == stage.iterations:
                means = {k: float(v) / n_running for k, v in running.items()}
                lrs = {name: opt.param_groups[0]["lr"] for name, (opt, _) in optimizers.items()}
                self.log({"stage": stage.name, "label": label or stage.name, "iteration": it + 1,
                          "losses": means, "lr": lrs, "time": round(time.perf_counter() - start, 3)})
                self.reporter.advance(0, " ".join(f"{k}={v:.3f}" for k, v in list(means.items())[:3]))
                running, n_running = {}, 0
            if checkpoints is not None and checkpoints.due(it + 1) and it + 1 < stage.iterations:
                checkpoints.save(method, stage, stage_index, it + 1, complete=False, optimizers=optimizers,
                                 data=data, log_lines=self.log_lines, run_id=self.run_id,
                                 batch=batch if stage.uses_batch is not None else None)
            self.reporter.advance(1)
        method.on_stage_end(stage, self)
        if checkpoints is not None:
            checkpoints.stage_done(method, stage, stage_index, n_stages, self.log_lines, self.run_id)
        self.reporter.stage_end()

    def fit(self, method: Method, cache: StageCache | None = None, cache_key_extra: str = "",
            indices=None, lut=None, label_prefix: str = "", checkpoints=None) -> dict:
        """Run all stages of `method`; reuse cached stage prefixes, or continue from
        `checkpoints.resume`. Returns what was reused."""
        stages = method.stages()
        reused = {}
        start, restore_at = 0, None
        resume = checkpoints.resume if checkpoints is not None else None
        if resume is not None:
            if resume.complete:
                method.load_state_dict(resume.payload["state_dict"])
                start = resume.stage_index + 1
            else:
                if resume.stage_index > 0:
                    checkpoints.load_stage_start(method, resume.stage_index)
                start = restore_at = resume.stage_index
            self.reporter.message(f"resuming from {resume.run_dir} at {resume.describe()}")
        elif cache is not None:
            for k in range(len(stages) - 1, -1, -1):
                hit = cache.get(method.stage_signature(k) + cache_key_extra)
                if hit is not None:
                    method.load_state_dict(hit[0])
                    start = k + 1
                    reused = {s.name: hit[1] for s in stages[: k + 1]}
                    self.reporter.message(f"reusing stages {list(reused)} from {hit[1]}")
                    break
        for k in range(start, len(stages)):
            self.run_stage(method, stages[k], k, indices, lut, label=f"{label_prefix}{stages[k].name}",
                           checkpoints=checkpoints, n_stages=len(stages), restore=k == restore_at)
            if cache is not None:
                cache.put(method.stage_signature(k) + cache_key_extra, method.state_dict(), self.run_id)
        return reused

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


def apply_updates(losses: dict, stage: Stage, optimizers: dict) -> None:
    updates = [u for u in stage.updates if u.loss in losses]
    for name in {u.optimizer for u in updates}:
        if name not in optimizers:
            raise KeyError(f"stage {stage.name!r} routes a loss to unknown optimizer {name!r}")
    for opt, _ in optimizers.values():
        opt.zero_grad(set_to_none=True)
    if len(updates) == 1:
        losses[updates[0].loss].backward()
    else:
        # All gradients first, then all steps: each loss only reaches its own optimizer's params.
        grads: dict[torch.nn.Parameter, torch.Tensor] = {}
        for i, u in enumerate(updates):
            params = [p for g in optimizers[u.optimizer][0].param_groups for p in g["params"]]
            gs = torch.autograd.grad(losses[u.loss], params, retain_graph=i < len(updates) - 1, allow_unused=True)
            for p, g in zip(params, gs):
                if g is not None:
                    grads[p] = grads[p] + g if p in grads else g
        for p, g in grads.items():
            p.grad = g
    stepping = list(dict.fromkeys(u.optimizer for u in updates))
    # Several processes: average the gradients before any step (no-op on one process).
    params = dict.fromkeys(p for name in stepping for g in optimizers[name][0].param_groups for p in g["params"])
    all_reduce_gradients(list(params))
    for name in stepping:
        optimizers[name][0].step()


@torch.no_grad()
def evaluate_confusion(method: Method, ctx: TrainContext, dataset, lut: torch.Tensor, num_classes: int,
                       indices=None, score_fn: Callable | None = None) -> np.ndarray:
    """One confusion matrix over a whole data set, accumulated on the device.

    eval.mode "full" (default): scores are computed at (upsampled to) the label's resolution.
    eval.mode "feature": the label is nearest-downsampled to the score map (CaGNet's official
    evaluation at 65x65 for 513x513 inputs).
    """
    eval_cfg = ctx.cfg.get("eval", {})
    mode = eval_cfg.get("mode", "full")
    if mode not in ("full", "feature"):
        raise ZsbenchError(f"eval.mode must be 'full' or 'feature', not {mode!r}")
    method.eval()
    meter = ConfusionMeter(num_classes, ctx.split.ignore_index, ctx.device)
    indices = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    # Several processes: each scores every world-th image; the matrices are summed below.
    mine = shard(indices)
    loader = ctx.loader(mine, eval_cfg.get("batch_size", 32), shuffle=False, dataset=dataset) if len(mine) else []
    ctx.reporter.stage_start("evaluate", len(loader))
    for batch in loader:
        b = ctx.to_device(batch, lut)
        size = b["label"].shape[-2:] if mode == "full" else None
        with autocast(ctx.device, ctx.options.precision):
            scores = score_fn(b["image"], size) if score_fn else method.predict(b["image"], size)
        label = b["label"]
        if scores.shape[-2:] != label.shape[-2:]:
            if mode == "full":
                scores = F.interpolate(scores.float(), size=label.shape[-2:], mode="bilinear", align_corners=False)
            else:
                label = label_maps_at(label, scores.shape[-2:])
        meter.update(scores.argmax(1), label)
        ctx.reporter.advance(1)
    ctx.reporter.stage_end()
    meter.all_reduce()
    return meter.numpy()
