"""How the engine runs a method (config section `engine`): numerics, speed, checkpoints.

    engine:
      precision: fp32          # fp32 | bf16 (torch.autocast; the loss is computed in fp32)
      tf32: false              # allow TF32 matmuls/convs on Ampere+ GPUs (fp32 runs only)
      channels_last: false     # NHWC weights and inputs (faster convolutions on tensor cores)
      compile: false           # torch.compile the backbone (true, or a mode: "max-autotune", ...)
      deterministic: false     # torch.use_deterministic_algorithms, cudnn.benchmark off
      checkpoint_every: 1000   # training state every N iterations (0: off), ckpt/last.pt
      keep_training_state: false  # keep ckpt/last.pt and stage snapshots after a run succeeds

Defaults are the faithful, plain-FP32 settings on every device. bf16, TF32 and channels-last
are options, not defaults on GPU: the issue asks for them to become defaults only once shown
not to change results, and that comparison needs GPU runs that have not been made yet (see
docs/deeplab.md). A top-level `precision:` (the first engine versions) is still read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import torch

from zsseg_bench.errors import ZsbenchError, did_you_mean

__all__ = ["EngineOptions", "autocast", "prepare_method"]

_PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class EngineOptions:
    precision: str = "fp32"
    tf32: bool = False
    channels_last: bool = False
    compile: bool | str = False
    deterministic: bool = False
    checkpoint_every: int = 1000
    keep_training_state: bool = False

    @classmethod
    def from_cfg(cls, cfg: dict) -> "EngineOptions":
        section = cfg.get("engine") or {}
        if not isinstance(section, dict):
            raise ZsbenchError("engine: must be a mapping, e.g. engine: {precision: bf16}")
        names = [f.name for f in fields(cls)]
        for key in section:
            if key not in names:
                raise ZsbenchError(f"engine.{key}: unknown option{did_you_mean(key, names)}; "
                                   f"options: {', '.join(names)}")
        values = dict(section)
        if "precision" not in values and cfg.get("precision") is not None:
            values["precision"] = cfg["precision"]
        opts = cls(**values)
        if opts.precision not in _PRECISIONS:
            raise ZsbenchError(f"engine.precision must be one of {', '.join(_PRECISIONS)}, not {opts.precision!r}")
        for key in ("tf32", "channels_last", "deterministic", "keep_training_state"):
            if not isinstance(getattr(opts, key), bool):
                raise ZsbenchError(f"engine.{key} must be true or false, not {getattr(opts, key)!r}")
        if not isinstance(opts.compile, (bool, str)):
            raise ZsbenchError(f"engine.compile must be true, false or a torch.compile mode, not {opts.compile!r}")
        if not isinstance(opts.checkpoint_every, int) or isinstance(opts.checkpoint_every, bool) \
                or opts.checkpoint_every < 0:
            raise ZsbenchError(f"engine.checkpoint_every must be a non-negative integer (0 = off), "
                               f"not {opts.checkpoint_every!r}")
        return opts

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
