"""The checkpoint file format: one format for weights, written atomically, checked on load.

A checkpoint is a `torch.save`d dict:

    {"format": 1, "kind": "zsseg-bench", "method": str, "impl": str, "split": str, "split_sha256": str,
     "num_classes": int, "config": dict, "stage": str | None, "iteration": int | None,
     "state_dict": {...}, "extra": {...}[, "training": {...}]}

Run folders keep them under `ckpt/` (not committed): `final.pt` after training (what
`zsbench predict` and `zsbench eval` load); during training `last.pt` and `stage-<k>.pt`,
whose `training` entry holds what resuming needs (resume.py). Loading checks the format and that the checkpoint
was made for the same method and split, and loads the weights strictly; it never unpickles
anything but tensors and plain data (torchfile.py), so everything written here is tensors,
numbers, strings and containers of them (RNG states included, resume.py); any mismatch is one
line naming the file and the keys or shapes at fault.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from zsseg_bench.engine.torchfile import load_torch_file
from zsseg_bench.errors import ZsbenchError

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "load_state_strict"]

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, method, *, method_name: str, split, config: dict, stage: str | None = None,
                    iteration: int | None = None, extra: dict | None = None, training: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT, "kind": "zsseg-bench", "method": method_name, "impl": method.impl,
        "split": split.name, "split_sha256": split.sha256, "num_classes": split.num_classes, "config": config,
        "stage": stage, "iteration": iteration,
        "state_dict": {k: v.detach().cpu() for k, v in method.state_dict().items()}, "extra": extra or {},
    }
    if training is not None:
        payload["training"] = training
    # Straight into a temporary file (no in-memory copy: DeepLab training states are ~0.7 GB),
    # then renamed over the old one: a reader never sees half a checkpoint.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path, *, method_name: str | None = None, split=None) -> dict:
    payload = load_torch_file(Path(path), "checkpoint")
    if not isinstance(payload, dict) or payload.get("kind") != "zsseg-bench":
        raise ZsbenchError(f"{path}: not a zsseg-bench checkpoint (official weight files load through "
                           f"--init or 'zsbench eval --checkpoint')")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ZsbenchError(f"{path}: checkpoint format {payload.get('format')!r}, this version reads "
                           f"{CHECKPOINT_FORMAT}")
    if method_name is not None and payload["method"] != method_name:
        raise ZsbenchError(f"{path}: checkpoint is for method {payload['method']!r}, not {method_name!r}")
    if split is not None and payload["split_sha256"] != split.sha256:
        raise ZsbenchError(f"{path}: checkpoint was trained under split {payload['split']!r} "
                           f"(sha256 {payload['split_sha256'][:12]}), not {split.name!r} ({split.sha256[:12]})")
    return payload


def load_state_strict(module: torch.nn.Module, state: dict, source: str, names: dict | None = None) -> None:
    """load_state_dict(strict=True) with a one-line report of missing, unexpected and mis-shaped keys.

    `names` maps a model key to the key it had in the file (when a loader renamed keys), so
    that the message names both."""
    names = names or {}

    def show(key: str) -> str:
        return f"{names[key]} (as {key})" if key in names and names[key] != key else key

    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [show(k) for k in state if k not in own]
    shapes = [f"{show(k)} {tuple(state[k].shape)} in the file vs {tuple(own[k].shape)} in the model" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} wrong-shaped ({'; '.join(shapes[:3])})")
        raise ZsbenchError(f"{source}: weights do not match the model: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)
