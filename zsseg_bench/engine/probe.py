"""Diagnostic probes taken while a method trains: they look at the model, they never change it.

* `quiet_probe` (with `preserved_rng`): every probe runs inside it. Evaluation draws from the
  global generators (a DataLoader seeds itself from torch's), generation draws noise; restoring
  the CPU, NumPy and device generators afterwards keeps training bit-identical with and without
  probes. Progress bars are silenced and the time is counted.
* `VAL_IMAGES`: how many images of the benchmark's `val` part the probes read (trajectory.py
  scores them at block boundaries; methods/common/diagnostics.py takes real features from them).
* `ProbeClock`: the seconds spent in probes, recorded so their cost is measured, not guessed.

Real datasets have no `val` part here: their runs have no trajectory (the context's `val_set` is None).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

__all__ = ["VAL_IMAGES", "preserved_rng", "quiet_probe", "ProbeClock"]

# Every class appears in some of them (a synthetic image holds 2-4 objects of its scene's classes),
# and a probe costs about a tenth of a test evaluation (500 images): a CaGNet finetune of 400
# iterations in blocks of 50 is probed 9 times.
VAL_IMAGES = 50


class _Quiet:
    """A reporter that shows nothing: a probe must not open progress bars inside a training stage's."""

    def stage_start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1, info: str = "") -> None: ...

    def stage_end(self) -> None: ...

    def message(self, text: str) -> None: ...


@contextlib.contextmanager
def quiet_probe(ctx):
    """The probe's surroundings: generators restored, progress silenced, the time counted."""
    reporter = ctx.reporter
    ctx.reporter = _Quiet()
    try:
        with preserved_rng(ctx.device), ctx.probe_clock():
            yield
    finally:
        ctx.reporter = reporter


@contextlib.contextmanager
def preserved_rng(device: torch.device | None = None):
    """Run the body with the global torch (and CUDA) and NumPy generators restored afterwards."""
    devices = [device] if device is not None and device.type == "cuda" else []
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(state)


class ProbeClock:
    """Seconds spent in probes (a context manager adds each use)."""

    def __init__(self):
        self.seconds = 0.0

    @contextlib.contextmanager
    def __call__(self):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
