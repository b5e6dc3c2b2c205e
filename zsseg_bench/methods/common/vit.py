"""A DPT-style ViT backbone (`dpt-vit`): the map SAZS's ViT model reads, in plain torch.

SAZS's `DPTSegmentationModel` runs a timm ViT-L/16 (384) with hooks at layers 5, 11, 17, 23 and
returns the second *reassembled* map: the tokens of the second hook, the class token dropped
("ignore" readout), a 1x1 conv to 512 channels and a 2x transposed conv, so stride 8. Its
refinenet/fusion blocks are built but unused. Here the ViT is written out with timm's parameter
names (`patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,
mlp.fc1,mlp.fc2}`), so a timm ViT state dict (`vit_weights`, read with `weights_only=True`, e.g.
the ImageNet ViT-L/16-384 weights saved from timm) loads strictly without timm or torchvision; the
blocks after the hook are not run. The head is a 1x1 conv from the 512-channel map to the method's
embedding size. Position embeddings are resized (bicubic) to the input's token grid.

Defaults are ViT-L/16 (dim 1024, 24 blocks, 16 heads, hook 11 = the second of [5, 11, 17, 23]);
tests use a tiny random-init one.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.catalog.schema import PositiveInt, declare_options
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.backbones import BACKBONES, BackboneOptions

__all__ = ["ViT", "DPTViT", "ViTOptions", "read_vit_state"]


class ViTOptions(BackboneOptions):
    patch: PositiveInt = 16
    dim: PositiveInt = 1024
    depth: PositiveInt = 24
    heads: PositiveInt = 16
    grid: PositiveInt = 24  # the position embedding's token grid (384 / 16)
    hook: int = 11  # the block whose tokens are reassembled (0-based)
    features: PositiveInt = 512  # channels of the reassembled map
    vit_weights: str | None = None  # a timm ViT state dict


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.attn.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(b, n, d)
        x = x + self.attn.proj(y)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class ViT(nn.Module):
    """A plain ViT with timm's parameter names (DINO's checkpoints use them too): patch embedding, class
    token, position embedding and blocks, plus the final `norm` when `norm` is true."""

    extra_prefixes: tuple[str, ...] = ()  # parameters of a subclass that a ViT state dict does not hold

    def __init__(self, patch=16, dim=1024, depth=24, heads=16, grid=24, norm: bool = False):
        super().__init__()
        self.patch = patch
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6) if norm else None

    def _positions(self, h: int, w: int) -> torch.Tensor:
        cls, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        side = int(grid.shape[1] ** 0.5)
        if (h, w) != (side, side):
            grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
            grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat([cls, grid], 1)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """[B, 1 + h*w, dim] tokens (class token first) entering block 0, and the token grid (h, w)."""
        t = self.patch_embed.proj(x)
        b, _, h, w = t.shape
        t = t.flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(b, -1, -1), t], 1) + self._positions(h, w), h, w

    def load_vit(self, path: str, what: str = "backbone.vit_weights") -> dict:
        """Load a timm-named ViT state dict file into the ViT's own parameters (strict on those)."""
        state, file = read_vit_state(path, what)
        return {"path": str(file), **self.load_vit_state(state, f"{what} {file}")}

    def load_vit_state(self, state: dict, where: str) -> dict:
        mine = {k: v for k, v in self.state_dict().items() if not k.startswith(self.extra_prefixes)}
        missing = [k for k in mine if k not in state]
        wrong = [k for k in mine if k in state and tuple(state[k].shape) != tuple(mine[k].shape)
                 and k != "pos_embed"]
        if missing or wrong:
            raise ZsbenchError(f"{where}: not a timm ViT of this size "
                               f"({'missing ' + missing[0] if missing else 'shape of ' + wrong[0] + ' differs'})")
        pos = state["pos_embed"]
        if pos.shape != self.pos_embed.shape:
            raise ZsbenchError(f"{where}: pos_embed {tuple(pos.shape)}, expected {tuple(self.pos_embed.shape)} "
                               f"(set backbone.grid)")
        self.load_state_dict({**self.state_dict(), **{k: state[k] for k in mine}})
        return {"loaded": len(mine)}


def read_vit_state(path: str, what: str) -> tuple[dict, Path]:
    """(state dict, file) of a ViT weights file, read by engine/torchfile.py (tensors only); a
    `state_dict` wrapper is unwrapped. `what` names the option in the error lines."""
    from zsseg_bench.engine.torchfile import load_torch_file, state_dict_of

    file = Path(path).expanduser()
    if not file.is_file():
        raise ZsbenchError(f"{what} {path}: no such file")
    return state_dict_of(load_torch_file(file, f"{what} file"), f"{what} {file}", "a ViT state dict"), file


class DPTViT(ViT):
    """Image -> the stride-8 reassembled map of one ViT block -> head (1x1 conv to `out_channels`)."""

    extra_prefixes = ("reassemble.", "head.")

    def __init__(self, out_channels: int, patch=16, dim=1024, depth=24, heads=16, grid=24, hook=11, features=512):
        if not 0 <= hook < depth:
            raise ZsbenchError(f"backbone.hook {hook}: must be a block index below backbone.depth {depth}")
        super().__init__(patch, dim, depth, heads, grid)
        self.out_channels, self.output_stride, self.hook = out_channels, patch // 2, hook
        self.reassemble = nn.Sequential(nn.Conv2d(dim, features, 1), nn.ConvTranspose2d(features, features, 2, 2))
        self.head = nn.Conv2d(features, out_channels, 1)

    def forward(self, x: torch.Tensor, head=None):
        t, h, w = self.embed(x)
        for block in self.blocks[: self.hook + 1]:
            t = block(t)
        fmap = t[:, 1:].transpose(1, 2).reshape(t.shape[0], -1, h, w)
        out = self.head(self.reassemble(fmap))
        return head(out) if head is not None else out

    def lr_groups(self) -> dict[str, list[nn.Parameter]]:
        body = [p for n, p in self.named_parameters() if not n.startswith("head.") and p.requires_grad]
        return {"body": body, "head_weight": [self.head.weight], "head_bias": [self.head.bias]}


@BACKBONES.register("dpt-vit")
@declare_options(ViTOptions)
def dpt_vit(out_channels: int, cfg: dict) -> DPTViT:
    model = DPTViT(out_channels, patch=cfg["patch"], dim=cfg["dim"], depth=cfg["depth"], heads=cfg["heads"],
                   grid=cfg["grid"], hook=cfg["hook"], features=cfg["features"])
    if cfg["vit_weights"]:
        model.vit_report = model.load_vit(cfg["vit_weights"])
    return model
