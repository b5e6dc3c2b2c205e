"""The one reader of torch files (weights, checkpoints): `torch.load(weights_only=True)` only.

A torch file is a pickle, and a pickle can run any code when it is loaded. Every file this
harness reads with torch (`--init`, `backbone.init`, `ckpt/final.pt` for `zsbench predict`,
`ckpt/last.pt` for `--resume`, `zsbench eval --checkpoint`) goes through `load_torch_file`,
which lets the unpickler build tensors, plain containers and numbers, and numpy arrays and
scalars (older official files store a few; numpy's reconstructors build data, not code), and
nothing else. A file that needs anything more is refused with one line that says how its
owner can convert it; it is never retried unsafely.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from zsseg_bench.errors import ZsbenchError

__all__ = ["load_torch_file", "state_dict_of", "CONVERT_HINT"]

CONVERT_HINT = ("if you trust the file, convert it once to plain tensors: python -c \"import torch; "
                "sd = torch.load('{path}', weights_only=False); sd = sd.get('state_dict', sd); "
                "torch.save({{k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}}, '{path}.tensors.pt')\" "
                "and pass {name}.tensors.pt")


def _numpy_globals() -> list:
    """numpy's array and scalar reconstructors and dtype classes: they rebuild data only."""
    core = getattr(np, "_core", None) or np.core
    found = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    found += sorted({type(np.dtype(c)) for c in "?bhilqBHILQefdgFDGUS"}, key=lambda t: t.__name__)
    return found


def load_torch_file(path: Path, what: str = "torch file"):
    """The object stored in `path`, read without running code from it; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise ZsbenchError(f"{path}: {what} not found")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not re.search(r"GLOBAL|Unsupported global|allowed global|Unsupported class", str(exc)):
            raise ZsbenchError(f"{path}: not a readable {what} (UnpicklingError); it may be truncated or not "
                               f"saved with torch.save") from None
        culprit = _culprit(str(exc))
        raise ZsbenchError(f"{path}: refused: loading this {what} would run Python code from it "
                           f"({culprit}); zsseg-bench only loads tensors and plain data; "
                           + CONVERT_HINT.format(path=path, name=path.name)) from None
    except Exception as exc:  # noqa: BLE001  torch raises many types for foreign or truncated files
        raise ZsbenchError(f"{path}: not a readable {what} ({type(exc).__name__}); it may be truncated or not "
                           f"saved with torch.save") from None


def state_dict_of(obj, where: str, kind: str = "a state dict") -> dict:
    """The state dict a weights file held: a `{"state_dict": ...}` wrapper (as training checkpoints
    save it) unwrapped; anything but a dict is one line naming `where`."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ZsbenchError(f"{where}: holds a {type(obj).__name__}, not {kind}")
    return obj


def _culprit(message: str) -> str:
    """The global the file asked for, from torch's long weights_only message."""
    found = re.search(r"GLOBAL [\w.]+", message)
    if found:
        return f"it asks for {found[0]}"
    return "it holds objects other than tensors"
