"""How the engine runs a method (config section `engine`): numerics, speed, checkpoints; and the
schemas of the other sections the engine reads (`input`, `data`, `eval`).

    engine:
      precision: fp32          # fp32 | bf16 (torch.autocast; the loss is computed in fp32)
      tf32: false              # allow TF32 matmuls/convs on Ampere+ GPUs (fp32 runs only)
      channels_last: false     # NHWC weights and inputs (faster convolutions on tensor cores)
      compile: false           # torch.compile the backbone (true, or a mode: "max-autotune", ...)
      deterministic: false     # torch.use_deterministic_algorithms, cudnn.benchmark off
      checkpoint_every: 1000   # training state every N iterations (0: off), ckpt/last.pt
      keep_training_state: false  # keep ckpt/last.pt and stage snapshots after a run succeeds
      tensorboard: false       # TensorBoard event files in <run>/tensorboard/ (pip install tensorboard)
      heldout_images: 0        # training images kept out of training, for periodic evaluation (never test)
      eval_every: 0            # evaluate on them every N iterations of each stage (0: off)

Defaults are the faithful, plain-FP32 settings on every device. bf16, TF32 and channels-last
are options, not defaults on GPU: the issue asks for them to become defaults only once shown
not to change results, and that comparison needs GPU runs that have not been made yet (see
docs/deeplab.md). A top-level `precision:` (the first engine versions) is still read.

`input.mean`/`std`, `data.batch_size`/`hflip` and `eval.batch_size`/`mode` have no default here:
every method card states them.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

import torch
from pydantic import ConfigDict, Field, PlainValidator, model_validator

from zsseg_bench.catalog.schema import NonNegativeInt, PositiveInt, Section, checked
from zsseg_bench.errors import ZsbenchError

__all__ = ["EngineOptions", "InputOptions", "DataOptions", "EvalOptions", "autocast", "prepare_method"]


def _mode_or_flag(value):
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise ValueError(f"{value!r} is not true, false or a torch.compile mode (e.g. max-autotune)")


class EngineOptions(Section):
    """The `engine` section (frozen: one run's options)."""

    model_config = ConfigDict(frozen=True)

    precision: Literal["fp32", "bf16"] = "fp32"
    tf32: bool = False
    channels_last: bool = False
    compile: Annotated[bool | str, PlainValidator(_mode_or_flag)] = False
    deterministic: bool = False
    checkpoint_every: NonNegativeInt = 1000  # 0: off
    keep_training_state: bool = False
    tensorboard: bool = False
    heldout_images: NonNegativeInt = 0
    eval_every: NonNegativeInt = 0

    @model_validator(mode="after")
    def _periodic_evaluation_needs_images(self):
        if self.eval_every and not self.heldout_images:
            raise ValueError("engine.eval_every needs engine.heldout_images > 0: periodic evaluation uses training "
                             "images held out of training, never the test set")
        return self

    @classmethod
    def from_cfg(cls, cfg: dict) -> "EngineOptions":
        section = cfg.get("engine") or {}
        if not isinstance(section, dict):
            raise ZsbenchError("engine: must be a mapping, e.g. engine: {precision: bf16}")
        values = dict(section)
        if "precision" not in values and cfg.get("precision") is not None:  # the first engine versions
            values["precision"] = cfg["precision"]
        return cls(**checked(cls, values, where="config", owner="", prefix=("engine",)))

    def apply_global(self, device: torch.device):
        """Process-wide switches (determinism, TF32, cuDNN autotuning); returns a function that
        puts the previous values back, so a run does not change the process it ran in."""
        previous = {
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                      torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32),
        }
        if self.deterministic:
            # cuBLAS needs this before its first use to be deterministic.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # warn_only: some CUDA kernels (bilinear upsampling's backward) have no deterministic
            # version; they still run, so bitwise equality is promised on CPU only.
            torch.use_deterministic_algorithms(True, warn_only=True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cudnn.deterministic = self.deterministic
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32

        def restore() -> None:
            torch.use_deterministic_algorithms(previous["deterministic"], warn_only=previous["warn_only"])
            (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32) = previous["cudnn"]

        return restore


# ---- what the engine reads besides `engine`: normalisation, loading, evaluation ----------------------
def _size(value):
    """A resize/crop size: N (square) or [height, width]; None or 0 means none."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                             and v > 0 for v in value):
        return value
    raise ValueError(f"{value!r} is not a size; use N or [height, width]")


Size = Annotated[int | list[int] | None, PlainValidator(_size)]


def _pad_value(value):
    if value == "mean" or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255):
        return value
    raise ValueError(f"{value!r} is not a padding colour; use mean or a value 0..255")


class InputOptions(Section):
    """How images are normalised on the device: (image - mean) / std, channels flipped first with bgr."""

    mean: Annotated[list[float], Field(min_length=3, max_length=3)]
    std: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)]
    bgr: bool = False


class DataOptions(Section):
    """Training batches: size, flips, the CPU transforms of real datasets (warp -> scale -> pad -> crop)
    and the loader. `pin_memory` unset: pinned on CUDA."""

    omit_if_default = ("pin_memory",)

    batch_size: PositiveInt
    hflip: bool
    warp: Size = None
    scale: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)] | None = None
    crop: Size = None
    pad_to: Size = None
    pad_mode: Literal["symmetric", "bottom_right"] = "symmetric"
    pad_image: Annotated[str | int, PlainValidator(_pad_value)] = "mean"
    num_workers: NonNegativeInt = 0
    pin_memory: bool | None = None

    @model_validator(mode="after")
    def _ordered_scale(self):
        if self.scale is not None and self.scale[0] > self.scale[1]:
            raise ValueError(f"data.scale {self.scale}: use [low, high] with low <= high, e.g. [0.5, 1.5]")
        return self


class EvalOptions(Section):
    """Evaluation: batch size, resolution (`mode` full: scores at the label's size; feature: the label
    at the score map's, CaGNet's official test), the absent-class rule, test-time resize."""

    batch_size: PositiveInt
    mode: Literal["full", "feature"]
    absent: Literal["nan", "zero"] = "nan"
    warp: Size = None
    short_side: PositiveInt | None = None
    label_at: Literal["input", "original"] = "input"
    keep_predictions: NonNegativeInt = 8  # test images whose predictions a run keeps for figures

    @model_validator(mode="after")
    def _one_resize(self):
        if self.warp and self.short_side:
            raise ValueError("set either eval.warp or eval.short_side, not both")
        return self

def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision not in ("fp32", None):
        raise ZsbenchError(f"precision must be 'fp32' or 'bf16', not {precision!r}")
    return torch.autocast(device_type=device.type, enabled=False)


def prepare_method(method: torch.nn.Module, opts: EngineOptions) -> torch.nn.Module:
    """Channels-last weights and a compiled backbone, in place (state-dict keys unchanged)."""
    if opts.channels_last:
        method.to(memory_format=torch.channels_last)
    if opts.compile:
        target = getattr(method, "backbone", None)
        if target is None:
            raise ZsbenchError(f"engine.compile: method {type(method).__name__} has no 'backbone' module to compile")
        kwargs = {"mode": opts.compile} if isinstance(opts.compile, str) else {}
        target.compile(**kwargs)  # nn.Module.compile: in place, keeps parameter names
    return method
