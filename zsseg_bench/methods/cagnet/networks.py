"""CaGNet's networks: the contextual module, the feature generator and the shared discriminator/classifier.

* `backbone`: the run's backbone, producing F (D channels). On real data DeepLabv2
  ResNet-101 (`build_backbone`), whose keys are the official `back.scale.layer*` /
  `back.scale.aspp.*` ones with `back.` replaced by `backbone.` (weights.py, docs/deeplab.md).
* `context`: the contextual module on sigmoid(F): `contextual1..3` (3x3, dilations 1, 2, 5,
  serial, ReLU), the context selector `fc_1` (3x3 conv to 3 maps, ReLU then sigmoid, one weight
  map per dilated output), `contextualpool` (1x1 + ReLU), `contextuallocalmu` (3x3) and
  `contextuallocalsigma` (3x3 + ReLU, used as log-variance). Z = mu + eps * exp(logvar / 2)
  while training, mu at test; X = sigmoid(F + F * sigmoid(Z)) is the feature everything
  classifies. Every conv is bias-less and sits in a `.conv` child, as in the official file.
* `generator`: a pixel-wise MLP of 1x1 convs, [class embedding ; latent] (E + D) -> 1024 ->
  960 -> 864 -> 784 -> 720 -> D, LeakyReLU(0.2) and dropout 0.1/0.1/0.3/0.5/0.5 after each
  hidden layer, sigmoid at the end (widths configurable for the synthetic benchmark). Its input
  is detached: generator losses never reach the backbone.
* `discriminator`: a shared trunk `fc` (1x1 conv to 1024 + ReLU + dropout 0.5), the GAN head
  `pred` (1x1 -> 1, a raw score; the losses apply the sigmoid) and the classifier `cls`
  (1x1 -> K or K + 1 logits); the patch-wise model adds `cls_3` (3x3, 1024 -> 1024) before `cls`.

The modules are named so that the official checkpoint (`{'iteration', 'state_dict'}`, 659 keys)
maps onto them by prefix: the key map is `KEY_MAP` in methods/cagnet/official.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.dropout import FastDropout

__all__ = ["ContextualModule", "Generator", "Discriminator", "embed_labels", "GEN_HIDDEN", "GEN_DROPOUT"]

GEN_HIDDEN = (1024, 960, 864, 784, 720)
GEN_DROPOUT = (0.1, 0.1, 0.3, 0.5, 0.5)


class _Conv(nn.Module):
    """conv (no bias) [+ ReLU]; the official `_ConvReLU_`, whose weight is under `.conv`."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False)
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class ContextualModule(nn.Module):
    """F [B, D, h, w] -> (X, mu, logvar, Z), see the module docstring."""

    def __init__(self, dim: int, hidden: int = 256, dilations=(1, 2, 5)):
        super().__init__()
        d1, d2, d3 = dilations
        self.contextual1 = _Conv(dim, hidden, 3, d1)
        self.contextual2 = _Conv(hidden, hidden, 3, d2)
        self.contextual3 = _Conv(hidden, hidden, 3, d3)
        self.fc_1 = _Conv(3 * hidden, 3, 3)  # ReLU here, sigmoid in forward: weights in [0.5, 1)
        self.contextualpool = _Conv(3 * hidden, dim, 1)
        self.contextuallocalmu = _Conv(dim, dim, 3, relu=False)
        self.contextuallocalsigma = _Conv(dim, dim, 3)  # ReLU: logvar >= 0 (official)

    def forward(self, feat: torch.Tensor, sample: bool):
        c1 = self.contextual1(torch.sigmoid(feat))
        c2 = self.contextual2(c1)
        c3 = self.contextual3(c2)
        cat = torch.cat([c1, c2, c3], 1)
        w = torch.sigmoid(self.fc_1(cat))  # [B, 3, h, w]
        n = c1.shape[1]
        weighted = cat * w.repeat_interleave(n, dim=1)
        pooled = self.contextualpool(weighted)
        # Diagnostic: a dead module (ReLU outputs all 0, so mu = logvar = 0 exactly) shows here.
        self.zero_share = (pooled == 0).float().mean().detach()
        mu = self.contextuallocalmu(pooled)
        logvar = self.contextuallocalsigma(pooled)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        x = torch.sigmoid(feat + feat * torch.sigmoid(z))
        return x, mu, logvar, z


class _GenBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float, slope: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.act = nn.LeakyReLU(slope)
        self.drop = FastDropout(dropout)

    def forward(self, x):
        return self.drop(self.act(self.conv(x)))


class Generator(nn.Module):
    """[embedding ; latent] map [B, E + D, h, w] -> feature map [B, D, h, w] in (0, 1)."""

    def __init__(self, in_dim: int, out_dim: int, hidden=GEN_HIDDEN, dropout=GEN_DROPOUT, slope: float = 0.2):
        super().__init__()
        hidden, dropout = list(hidden), list(dropout)
        if len(dropout) != len(hidden):
            raise ZsbenchError(f"generator.dropout: {len(dropout)} values for {len(hidden)} hidden layers")
        layers, cin = [], in_dim
        for width, p in zip(hidden, dropout):
            layers.append(_GenBlock(cin, width, p, slope))
            cin = width
        layers.append(nn.Conv2d(cin, out_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return torch.sigmoid(self.mlp(x))


class _Trunk(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.drop = FastDropout(dropout)

    def forward(self, x):
        return self.drop(F.relu(self.conv(x)))


class Discriminator(nn.Module):
    """Shared trunk `fc`, GAN head `pred`, classifier `cls` (and `cls_3` for patches)."""

    def __init__(self, dim: int, n_logits: int, hidden: int = 1024, dropout: float = 0.5, patch: bool = False):
        super().__init__()
        self.fc = _Trunk(dim, hidden, dropout)
        self.pred = nn.Conv2d(hidden, 1, 1)
        self.cls = nn.Conv2d(hidden, n_logits, 1)
        self.cls_3 = nn.Conv2d(hidden, hidden, 3, padding=1) if patch else None

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.cls(self.cls_3(h) if self.cls_3 is not None else h)


def embed_labels(labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Label maps [B, h, w] -> embedding maps [B, E, h, w]; a label outside the table (ignore,
    or an unseen class missing from a seen-only table) embeds to the zero vector."""
    k = table.shape[0]
    inside = (labels >= 0) & (labels < k)
    return (table[labels.clamp(0, k - 1)] * inside.unsqueeze(-1).to(table.dtype)).permute(0, 3, 1, 2)
