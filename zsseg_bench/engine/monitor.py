"""Watching a run while it trains: TensorBoard event files and periodic evaluation.

* `engine.tensorboard: true` writes every train_log.jsonl entry (losses, learning rates) and every
  periodic evaluation as TensorBoard scalars into <run>/tensorboard/ (`tensorboard --logdir
  results/runs`). The tensorboard package is optional (`pip install tensorboard`).
* `engine.heldout_images: N` keeps N training images (chosen by the run seed, after the split's
  training policy) out of training; `engine.eval_every: K` evaluates on them every K iterations of
  each stage and at its end. Never the test set: the test set is scored once, after training.
  The held-out images are labelled as for training (unseen pixels ignored), so what is measured
  is the seen classes' mIoU, pixel and mean accuracy (S-mIoU, S-PA, S-MA), and the share of seen
  pixels predicted as an unseen class (seen_as_unseen: how strongly the model favours unseen classes).

Every process evaluates (the evaluation sums the confusion over processes); only the one that
writes the run record writes events. A periodic evaluation is also a line of train_log.jsonl
({"heldout": {...}}), so the record keeps it without TensorBoard.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from zsseg_bench.errors import ZsbenchError

__all__ = ["Monitor", "check_tensorboard", "HELDOUT_METRICS"]

HELDOUT_METRICS = ("S-mIoU", "S-PA", "S-MA")


def check_tensorboard() -> None:
    """One line naming the fix when engine.tensorboard is on but the package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ZsbenchError("engine.tensorboard=true needs the tensorboard package: pip install tensorboard "
                           "(with torch==2.13.0 in the same command), or leave engine.tensorboard off")


class Monitor:
    """Created by the run (runs/train.py) when `engine.tensorboard` or `engine.eval_every` is set."""

    def __init__(self, ctx, folder: Path | None):
        self.ctx = ctx
        self.writer = None
        if ctx.options.tensorboard and folder is not None:
            check_tensorboard()
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(folder) / "tensorboard"))

    def log(self, record: dict) -> None:
        """A train_log.jsonl entry as scalars: <kind>/<stage label>/<name> at the stage's iteration."""
        if self.writer is None:
            return
        label, step = record.get("label") or record.get("stage", ""), int(record.get("iteration", 0))
        for kind in ("losses", "lr", "heldout"):
            for name, value in (record.get(kind) or {}).items():
                if value is not None and value == value:
                    self.writer.add_scalar(f"{'loss' if kind == 'losses' else kind}/{label}/{name}", value, step)

    def after_step(self, method, stage, label: str, done: int) -> None:
        """Evaluate on the held-out images every engine.eval_every iterations and at the stage's end."""
        every = self.ctx.options.eval_every
        if not every or self.ctx.heldout_indices is None or not (done % every == 0 or done == stage.iterations):
            return
        scores = self.evaluate(method)
        self.ctx.log({"stage": stage.name, "label": label, "iteration": done, "heldout": scores})

    def evaluate(self, method) -> dict:
        from zsseg_bench.engine.loop import Reporter
        from zsseg_bench.metrics import ScoringRule, compute_scores

        ctx, split = self.ctx, self.ctx.split
        reporter, ctx.reporter = ctx.reporter, Reporter()  # silent: the stage's progress stays on screen
        try:
            confusion = ctx.confusion(method, ctx.train_set, ctx.train_lut, split.num_classes,
                                      indices=ctx.heldout_indices)
        finally:
            ctx.reporter = reporter
        scores = compute_scores(confusion, split.seen_mask, split.eval_names,
                                ScoringRule(absent=ctx.cfg["eval"]["absent"]), split.background_index)
        out = {m: float(scores.metrics[m]) for m in HELDOUT_METRICS}
        seen = np.asarray(split.seen_mask, dtype=bool)
        rows = confusion[seen].sum()
        out["seen_as_unseen"] = float(confusion[np.ix_(seen, ~seen)].sum() / rows) if rows else None
        return out

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
