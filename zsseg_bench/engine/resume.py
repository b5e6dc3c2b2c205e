"""Training checkpoints and resuming (`engine.checkpoint_every`, `zsbench run --resume RUN_DIR`).

A run folder's `ckpt/` (never committed) holds, next to the runner's `final.pt`:

* `last.pt`: the newest training state, in the `checkpoint_format.py` format plus a `training`
  entry: stage index and iteration, optimizer and scheduler states, every RNG state (torch,
  CUDA, numpy, `random`, the stage's data generator), the data stream's position, the length
  of train_log.jsonl, and for stages that reuse a batch over several iterations that batch.
  Written every `checkpoint_every` iterations and at the end of every stage, atomically (a
  temporary file renamed into place), and only after checking that every weight is finite:
  a diverging run stops with the previous, good `last.pt` still there.
* `stage-<k>.pt`: the weights at the end of stage k when a later stage exists. A run resumed
  in the middle of stage k+1 starts that stage from them (its `on_stage_start` may depend on
  the weights, e.g. offline pseudo-labels), then loads `last.pt`.

Resuming restores all of that, so on CPU in deterministic mode a resumed run ends with the
same weights and metrics as one that was never interrupted. How the runner turns this into
a new run folder is in runs/train.py (`resume_request`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zsseg_bench.engine.checkpoint_format import load_checkpoint, save_checkpoint
from zsseg_bench.errors import ZsbenchError

__all__ = ["TrainingCheckpoints", "ResumePoint", "capture_rng", "restore_rng", "LAST", "stage_file"]

LAST = "last.pt"


def stage_file(index: int) -> str:
    return f"stage-{index}.pt"


def capture_rng() -> dict:
    """Every RNG state, as tensors and plain numbers, so the checkpoint loads with weights_only=True."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["random"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _all_finite(method: torch.nn.Module) -> bool:
    flags = [t.isfinite().all() for t in method.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


@dataclass
class ResumePoint:
    """Where an earlier run's `ckpt/last.pt` stopped."""

    run_dir: Path
    payload: dict

    @property
    def training(self) -> dict:
        return self.payload["training"]

    @property
    def stage_index(self) -> int:
        return int(self.training["stage_index"])

    @property
    def iteration(self) -> int:
        return int(self.training["iteration"])

    @property
    def complete(self) -> bool:
        return bool(self.training["complete"])

    def describe(self) -> str:
        where = "end" if self.complete else f"iteration {self.iteration}"
        return f"stage {self.stage_index} ('{self.training['stage_name']}') {where}"

    @classmethod
    def load(cls, run_dir: Path, method_name: str, split) -> "ResumePoint":
        path = Path(run_dir) / "ckpt" / LAST
        if not path.is_file():
            raise ZsbenchError(f"{run_dir}: no training checkpoint (ckpt/{LAST}); the run stopped before its first "
                               f"checkpoint or ran with engine.checkpoint_every=0; start it again with zsbench run")
        payload = load_checkpoint(path, method_name=method_name, split=split)
        if "training" not in payload:
            raise ZsbenchError(f"{path}: a weights-only checkpoint; resuming needs a training checkpoint")
        return cls(Path(run_dir), payload)


def _same(a, b) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and a != a and b != b
    return both_nan or a == b


def reapply_hyperparameters(opt, sched, fresh: list[dict]) -> list[str]:
    """After loading an optimizer/scheduler state, put back the hyperparameters the run's config
    (`fresh`: the param groups as the method just configured them) sets differently.

    Without this the state restore would bring back the interrupted run's learning rate, momentum
    and weight decay, and `--resume RUN --set train.lr=X` would record X and train with the old
    value. The learning rate keeps the schedule's position: lr = new base lr x (checkpoint lr /
    checkpoint base lr). Returns what changed (nothing when the config is unchanged, so that a
    plain resume stays exact)."""
    changes = []
    for i, (group, new) in enumerate(zip(opt.param_groups, fresh)):
        for key, value in new.items():
            if key not in ("lr", "initial_lr") and not _same(group.get(key), value):
                changes.append(f"group {i} {key} {group.get(key)} -> {value}")
                group[key] = value
        old_base, new_base = group.get("initial_lr", group["lr"]), new.get("initial_lr", new["lr"])
        if _same(old_base, new_base):
            continue
        if "initial_lr" not in group:
            group["lr"] = new_base
        else:
            if old_base == 0:
                raise ZsbenchError(f"--set: the checkpoint's base learning rate of group {i} is 0, so the schedule's "
                                   f"position cannot carry over to a new one; start the run again instead")
            group["lr"], group["initial_lr"] = new_base * (group["lr"] / old_base), new_base
            if sched is not None and hasattr(sched, "base_lrs"):
                sched.base_lrs[i] = new_base
        changes.append(f"group {i} base lr {old_base} -> {new_base}")
    if sched is not None and hasattr(sched, "_last_lr"):
        sched._last_lr = [g["lr"] for g in opt.param_groups]
    return changes


class TrainingCheckpoints:
    """Writes `last.pt`/`stage-<k>.pt` for one run, and restores from a `ResumePoint`."""

    def __init__(self, folder: Path | None, every: int, *, method_name: str, split, config: dict,
                 writer: bool = True, resume: ResumePoint | None = None):
        self.folder = Path(folder) if folder is not None else None
        self.every = int(every)
        self.meta = {"method_name": method_name, "split": split, "config": config}
        self.writer = writer and self.folder is not None
        self.resume = resume
        self.applied: list[str] = []  # hyperparameters the config changed over the restored state
        self.last: str | None = None
        if resume is not None:
            self.last = f"{resume.run_dir / 'ckpt' / LAST} ({resume.describe()})"

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def due(self, iteration: int) -> bool:
        return self.enabled and iteration % self.every == 0

    def describe_last(self) -> str:
        if self.last is None:
            return ("no checkpoint was written yet" if self.enabled
                    else "checkpoints are off (engine.checkpoint_every=0)")
        return f"the last good checkpoint is {self.last}"

    # ---- writing ---------------------------------------------------------------------------------
    def save(self, method, stage, stage_index: int, iteration: int, *, complete: bool, optimizers: dict | None,
             data=None, log_lines: int = 0, batch: dict | None = None, run_id: str = "") -> None:
        if not _all_finite(method):
            raise ZsbenchError(f"weights became non-finite by iteration {iteration} of stage '{stage.name}' "
                               f"(run {run_id or 'unnamed'}); {self.describe_last()}; lower the learning rate "
                               f"and resume from it", exit_code=1)
        if not self.writer:
            return
        training = {
            "stage_index": stage_index, "stage_name": stage.name, "iteration": iteration, "complete": complete,
            "optimizers": None if optimizers is None else {
                name: {"optimizer": _to_cpu(opt.state_dict()),
                       "scheduler": None if sched is None else sched.state_dict()}
                for name, (opt, sched) in optimizers.items()},
            "rng": capture_rng(), "data": None if data is None else _to_cpu(data.state_dict()),
            "log_lines": log_lines, "batch": None if batch is None else _to_cpu(batch),
        }
        path = save_checkpoint(self.folder / LAST, method, training=training, stage=stage.name, iteration=iteration,
                               **self.meta)
        self.last = f"{path} (stage {stage_index} ('{stage.name}') {'end' if complete else f'iteration {iteration}'})"

    def stage_done(self, method, stage, stage_index: int, n_stages: int, log_lines: int, run_id: str = "") -> None:
        if not self.enabled:
            return
        if stage_index < n_stages - 1 and self.writer:
            save_checkpoint(self.folder / stage_file(stage_index), method, stage=stage.name,
                            iteration=stage.iterations, **self.meta)
        self.save(method, stage, stage_index, stage.iterations, complete=True, optimizers=None,
                  log_lines=log_lines, run_id=run_id)

    def cleanup(self) -> None:
        """Remove the training state after a successful run (unless engine.keep_training_state)."""
        if not self.writer:
            return
        for path in [self.folder / LAST, *self.folder.glob("stage-*.pt")]:
            path.unlink(missing_ok=True)

    # ---- restoring -------------------------------------------------------------------------------
    def load_stage_start(self, method, stage_index: int) -> None:
        """Weights at the start of stage `stage_index` of the run being resumed (k > 0)."""
        path = self.resume.run_dir / "ckpt" / stage_file(stage_index - 1)
        payload = load_checkpoint(path, method_name=self.meta["method_name"], split=self.meta["split"])
        method.load_state_dict(payload["state_dict"])

    def restore(self, method, optimizers: dict, data) -> tuple[int, dict | None]:
        """Load the mid-stage state into a stage that has just been set up; return (iteration, batch)."""
        t = self.resume.training
        method.load_state_dict(self.resume.payload["state_dict"])
        if set(t["optimizers"]) != set(optimizers):
            raise ZsbenchError(f"{self.resume.run_dir}: the checkpoint has optimizers {sorted(t['optimizers'])}, "
                               f"the method now configures {sorted(optimizers)}")
        for name, (opt, sched) in optimizers.items():
            fresh = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(t["optimizers"][name]["optimizer"])
            if sched is not None and t["optimizers"][name]["scheduler"] is not None:
                sched.load_state_dict(t["optimizers"][name]["scheduler"])
            self.applied += [f"optimizer '{name}' {c} (the run's config)" for c in
                             reapply_hyperparameters(opt, sched, fresh)]
        data.load_state_dict(t["data"])
        restore_rng(t["rng"])
        batch = t.get("batch")
        if batch is not None:
            device = data.device
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) and k not in ("index",) else v
                     for k, v in batch.items()}
        return int(t["iteration"]), batch
