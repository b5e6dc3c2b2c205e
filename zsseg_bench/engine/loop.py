"""Training: stages, the per-iteration step, loss routing. They know the `Method` interface and
nothing about any method; the data side (device, augmentation, loaders) is the run context
(context.py), which these functions receive as `ctx`.

* Each stage is seeded from (run seed, stage index), so a stage's result does not depend on
  what ran before it in the process; this is what makes reusing stages (spnet-c reusing
  spnet's training) and resuming exact.
* A step returns named losses; `Stage.updates` routes each loss to one optimizer. With several
  updates, all gradients are computed before any optimizer steps (PyTorch >= 1.5 forbids the
  official GAN codes' step-then-backward order through already-updated weights).
* `train_step` is the one per-iteration step: `run_stage` trains with it and `zsbench bench`
  times it, so what is timed is what trains.
* A non-finite loss stops the run with a message naming the loss, stage and iteration, and
  the last good checkpoint (a checkpoint is only written when every weight is finite).
* Training batches come from a `BatchStream` (stream.py) whose position is saved with the
  optimizer, scheduler and RNG states every `engine.checkpoint_every` iterations (resume.py),
  so a resumed run continues exactly where the interrupted one was.
* Numerics and speed options (`engine:` precision, TF32, channels-last, torch.compile,
  deterministic mode) are in options.py; several processes (distributed.py) split each batch
  and average gradients.
* A stage with `Stage.probe_every` is scored on the val images at its block boundaries
  (trajectory.py); the probes leave the weights and the random generators as they were.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from zsseg_bench.engine.distributed import all_ranks_true, all_reduce_gradients
from zsseg_bench.engine.options import autocast
from zsseg_bench.engine.trajectory import val_point
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import Method, Stage

__all__ = ["Reporter", "seed_everything", "StageCache", "NonFiniteLoss", "train_step", "apply_updates",
           "run_stage", "fit"]


class Reporter:
    """Progress callbacks; the CLI supplies its implementations (cli/progress.py), tests use this silent one."""

    def run_start(self, method: str, seed: int, folder=None) -> None:
        """A run (method, seed) starts, writing into `folder` (None where nothing is written)."""

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


class StageCache:
    """In-memory weights after a prefix of stages, keyed by signature (one `zsbench run`)."""

    def __init__(self):
        self._store: dict[str, tuple[dict, str]] = {}

    def get(self, key: str):
        return self._store.get(key)

    def put(self, key: str, state: dict, source: str) -> None:
        self._store[key] = ({k: v.detach().clone() for k, v in state.items()}, source)


class NonFiniteLoss(Exception):
    """A training step produced a NaN or infinite loss (on some rank); nothing was updated."""

    def __init__(self, name: str, value: float):
        super().__init__(f"loss '{name}' is {value}")
        self.name, self.value = name, value


def train_step(method: Method, stage: Stage, batch: dict, iteration: int, optimizers: dict,
               device: torch.device, precision: str) -> dict:
    """One training iteration: the method's losses under autocast, the finite check (every rank
    agrees), the routed updates and the scheduler steps. Returns the losses; an empty dict means
    the method skipped this iteration and nothing was updated. Raises `NonFiniteLoss`."""
    method.train()
    with autocast(device, precision):
        losses = method.training_step(batch, stage, iteration)
    if not losses:
        return losses
    finite = torch.stack([v.detach().float() for v in losses.values()]).isfinite()
    if not all_ranks_true(bool(finite.all()), device):
        bad = (~finite).nonzero()
        name = list(losses)[int(bad[0])] if len(bad) else list(losses)[0]
        raise NonFiniteLoss(name, float(losses[name].detach()))
    apply_updates(losses, stage, optimizers)
    for _, sched in optimizers.values():
        if sched is not None:
            sched.step()
    return losses


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


class _LossLog:
    """Running means of a stage's losses, written to train_log.jsonl every `log_every` iterations."""

    def __init__(self, ctx, stage: Stage, label: str, optimizers: dict):
        self.ctx, self.stage, self.label, self.optimizers = ctx, stage, label, optimizers
        self.every = ctx.cfg["log_every"]
        self.start = time.perf_counter()
        self.running: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, losses: dict, iteration: int) -> None:
        for k, v in losses.items():
            self.running[k] = self.running.get(k, 0.0) + v.detach().float()
        self.count += 1
        done = iteration + 1
        if done % self.every == 0 or done == self.stage.iterations:
            means = {k: float(v) / self.count for k, v in self.running.items()}
            lrs = {name: opt.param_groups[0]["lr"] for name, (opt, _) in self.optimizers.items()}
            self.ctx.log({"stage": self.stage.name, "label": self.label, "iteration": done, "losses": means,
                          "lr": lrs, "time": round(time.perf_counter() - self.start, 3)})
            self.ctx.reporter.advance(0, " ".join(f"{k}={v:.4g}" for k, v in means.items()))
            self.running, self.count = {}, 0


def _stage_indices(ctx, stage: Stage, indices):
    if indices is None and stage.train_images == "all":
        every = np.arange(len(ctx.train_set))
        held = getattr(ctx, "heldout_indices", None)
        return every if held is None else np.setdiff1d(every, held)
    if stage.train_images not in ("split", "all"):
        raise ZsbenchError(f"stage {stage.name!r}: train_images must be 'split' or 'all', not {stage.train_images!r}")
    return indices


def _stopped(ctx, bad: NonFiniteLoss, stage: Stage, iteration: int, checkpoints) -> ZsbenchError:
    last = checkpoints.describe_last() if checkpoints is not None else "no checkpoints in this stage"
    return ZsbenchError(f"loss '{bad.name}' is {bad.value} at iteration {iteration + 1} of stage '{stage.name}' "
                        f"(run {ctx.run_id or 'unnamed'}); the run stopped there; {last}; lower the learning rate "
                        f"or check the inputs", exit_code=1)


def _probe(ctx, method: Method, stage: Stage, label: str, done: int) -> None:
    """Seen/unseen mIoU on the val images at the stage's block boundaries (`Stage.probe_every`):
    before the first iteration, every `probe_every` iterations and after the last (probe.py)."""
    every = stage.probe_every
    if not every or (done % every and done != stage.iterations):
        return
    point = val_point(method, ctx)
    if point is not None:  # kept for the run record (train_log.jsonl stays one line of losses per log step)
        ctx.val_trajectory.append({"stage": stage.name, "label": label, "iteration": done, **point})


def run_stage(ctx, method: Method, stage: Stage, stage_index: int, indices=None, lut=None, label: str = "",
              checkpoints=None, n_stages: int = 1, restore: bool = False) -> None:
    """Train `method` through one stage; with `restore`, continue it from `checkpoints.resume`."""
    gen = seed_everything(ctx.seed, 1000 + stage_index)
    indices = _stage_indices(ctx, stage, indices)
    method.on_stage_start(stage, ctx)
    optimizers = method.configure_optimizers(stage)
    data = ctx.batches(gen, indices, lut, stage.batch_size)
    label = label or stage.name
    ctx.current_stage = label  # diagnostics name the stage they were taken after
    log = _LossLog(ctx, stage, label, optimizers)
    batch, first = None, 0
    if restore:
        first, batch = checkpoints.restore(method, optimizers, data)
        ctx.reporter.message(f"resumed stage '{stage.name}' at iteration {first}"
                             + "".join(f"; {change}" for change in checkpoints.applied))
    ctx.reporter.stage_start(label, stage.iterations)
    ctx.reporter.advance(first)
    _probe(ctx, method, stage, label, first)
    for it in range(first, stage.iterations):
        if stage.uses_batch is None or stage.uses_batch(it) or batch is None:
            batch = next(data)
        try:
            losses = train_step(method, stage, batch, it, optimizers, ctx.device, ctx.options.precision)
        except NonFiniteLoss as bad:
            raise _stopped(ctx, bad, stage, it, checkpoints) from None
        if not losses:
            ctx.reporter.advance(1)
            continue
        log.add(losses, it)
        if getattr(ctx, "monitor", None) is not None:  # TensorBoard, periodic evaluation (monitor.py)
            ctx.monitor.after_step(method, stage, label, it + 1)
        if checkpoints is not None and checkpoints.due(it + 1) and it + 1 < stage.iterations:
            checkpoints.save(method, stage, stage_index, it + 1, complete=False, optimizers=optimizers,
                             data=data, log_lines=ctx.log_lines, run_id=ctx.run_id,
                             batch=batch if stage.uses_batch is not None else None)
        ctx.reporter.advance(1)
        _probe(ctx, method, stage, label, it + 1)
    method.on_stage_end(stage, ctx)
    if checkpoints is not None:
        checkpoints.stage_done(method, stage, stage_index, n_stages, ctx.log_lines, ctx.run_id)
    ctx.reporter.stage_end()


def _resume_start(ctx, method: Method, resume, checkpoints) -> tuple[int, int | None]:
    """(first stage to run, stage to restore mid-way or None) of a resumed run."""
    if resume.complete:
        method.load_state_dict(resume.payload["state_dict"])
        start, restore_at = resume.stage_index + 1, None
    else:
        if resume.stage_index > 0:
            checkpoints.load_stage_start(method, resume.stage_index)
        start = restore_at = resume.stage_index
    ctx.reporter.message(f"resuming from {resume.run_dir} at {resume.describe()}")
    return start, restore_at


def _cached_start(ctx, method: Method, stages: list, cache: StageCache, key_extra: str) -> tuple[int, dict]:
    """(first stage to run, what was reused) after loading the longest cached prefix of stages."""
    for k in range(len(stages) - 1, -1, -1):
        hit = cache.get(method.stage_signature(k) + key_extra)
        if hit is not None:
            method.load_state_dict(hit[0])
            reused = {s.name: hit[1] for s in stages[: k + 1]}
            ctx.reporter.message(f"reusing stages {list(reused)} from {hit[1]}")
            return k + 1, reused
    return 0, {}


def fit(ctx, method: Method, cache: StageCache | None = None, cache_key_extra: str = "", indices=None, lut=None,
        label_prefix: str = "", checkpoints=None) -> dict:
    """Run all stages of `method` (each through `ctx.run_stage`); reuse cached stage prefixes, or
    continue from `checkpoints.resume`. Returns what was reused."""
    stages = method.stages()
    reused, start, restore_at = {}, 0, None
    resume = checkpoints.resume if checkpoints is not None else None
    if resume is not None:
        start, restore_at = _resume_start(ctx, method, resume, checkpoints)
    elif cache is not None:
        start, reused = _cached_start(ctx, method, stages, cache, cache_key_extra)
    for k in range(start, len(stages)):
        ctx.run_stage(method, stages[k], k, indices, lut, label=f"{label_prefix}{stages[k].name}",
                      checkpoints=checkpoints, n_stages=len(stages), restore=k == restore_at)
        if cache is not None:
            cache.put(method.stage_signature(k) + cache_key_extra, method.state_dict(), ctx.run_id)
    return reused
