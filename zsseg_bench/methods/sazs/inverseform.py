"""Optional InverseForm term: a frozen, user-supplied InverseNet scoring predicted against true edges.

The official loss adds 0.3 x the distance between the transform InverseNet predicts from the
(predicted edge, true edge) pair and the identity transform; InverseNet's pretrained weights
(`distance_measures_regressor.pth`) are not released with SAZS and its architecture is
third-party, so zsseg-bench ships neither. The plug-in contract: `inverseform.factory`
('module:function') builds an nn.Module taking (predicted edges, true edges), each [B, 1, H, W]
in [0, 1], and returning [B, 6] affine parameters; `inverseform.path` holds its state dict,
read by engine/torchfile.py (tensors only: no code runs when it is loaded). The term is the mean
squared distance of the prediction from the identity (1, 0, 0, 0, 1, 0). Off by default.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from zsseg_bench.engine.torchfile import load_torch_file, state_dict_of
from zsseg_bench.errors import ZsbenchError

__all__ = ["build_inverseform", "InverseFormLoss"]

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class InverseFormLoss(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.register_buffer("identity", torch.tensor(IDENTITY), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()  # frozen: its BatchNorm statistics never move
        return self

    def forward(self, predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        params = self.net(predicted, truth)
        return (params - self.identity).square().sum(1).mean()


def build_inverseform(cfg: dict) -> InverseFormLoss | None:
    """The frozen InverseForm term, or None when `inverseform.path` is not set."""
    if not cfg["path"]:
        return None
    path = Path(cfg["path"]).expanduser()
    if not path.is_file():
        raise ZsbenchError(f"inverseform.path {cfg['path']}: no such file; give the InverseNet weights or unset it")
    if not cfg["factory"] or ":" not in cfg["factory"]:
        raise ZsbenchError("inverseform.factory: set 'module:function' building the InverseNet the weights load into")
    module, _, name = cfg["factory"].partition(":")
    try:
        net = getattr(importlib.import_module(module), name)()
    except (ImportError, AttributeError) as exc:
        raise ZsbenchError(f"inverseform.factory {cfg['factory']}: cannot build it ({exc})") from None
    state = state_dict_of(load_torch_file(path, "inverseform.path file"), f"inverseform.path {path}",
                          f"weights for {cfg['factory']}")
    try:
        net.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any mismatched file is the same user error
        raise ZsbenchError(f"inverseform.path {path}: not weights for {cfg['factory']} ({type(exc).__name__})") from None
    return InverseFormLoss(net)
