"""DINO features for the eigen-masks of real images (`zsbench sazs eigs --features dino --weights PATH`).

SAZS's released masks are "eigenvectors of the Laplacian of self-supervised pixel-wise features";
the recipe is not released. This follows Deep Spectral Methods (Melas-Kyriazi et al. 2022), the
natural candidate: a DINO ViT, the **keys of its last attention layer** for every patch (the class
token dropped, all heads' keys side by side), L2-normalised; the affinity is their cosine with
negative values set to 0 (no colour term). Keys rather than the output tokens because that is the
choice of DSM and of the other spectral/graph methods on DINO (LOST, TokenCut): in the last layer
the keys of one object's patches are the most alike, so the graph's cuts follow objects.

The ViT is the project's plain-torch one (methods/common/vit.py), whose parameter names are
timm's; DINO's official checkpoints use the same names (`dino_deitsmall16_pretrain.pth`,
`dino_vitbase8_pretrain.pth`, ...). Patch size, width, depth and position grid are read from the
file; heads = width / 64 (every DINO ViT) unless given. A training checkpoint (`teacher` entry,
`module.` / `backbone.` prefixes) is unwrapped. The file is read by engine/torchfile.py (tensors
only). Input: the dataset's uint8 RGB image scaled to [0, 1], normalised with the ImageNet mean
and std DINO was trained with, resized (bilinear) so each side is a multiple of the patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.vit import ViT, read_vit_state

__all__ = ["DinoKeys", "load_dino"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_REQUIRED = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight")


def _unwrap(state: dict) -> dict:
    """The backbone's own keys from a DINO file: the teacher of a training checkpoint, prefixes dropped."""
    if isinstance(state.get("teacher"), dict):
        state = state["teacher"]
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def load_dino(path: str, heads: int | None = None) -> ViT:
    """A ViT with the architecture and weights of the DINO checkpoint at `path`."""
    raw, file = read_vit_state(path, "--weights")
    state = _unwrap(raw)
    where = f"--weights {file}"
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ZsbenchError(f"{where}: not a DINO ViT checkpoint (timm-style keys): key {missing[0]!r} is missing "
                           f"(first keys: {', '.join(list(state)[:3]) or 'none'})")
    proj, pos = state["patch_embed.proj.weight"], state["pos_embed"]
    dim, patch = int(state["cls_token"].shape[-1]), int(proj.shape[-1])
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.split(".")[1].isdigit())
    grid = round((pos.shape[1] - 1) ** 0.5)
    if proj.ndim != 4 or tuple(proj.shape[:2]) != (dim, 3) or grid * grid != pos.shape[1] - 1:
        raise ZsbenchError(f"{where}: not a DINO ViT checkpoint: patch_embed.proj.weight {tuple(proj.shape)} and "
                           f"pos_embed {tuple(pos.shape)} do not fit a ViT of width {dim} on a square grid")
    heads = heads or max(1, dim // 64)
    if dim % heads:
        raise ZsbenchError(f"--heads {heads}: must divide the checkpoint's width {dim}")
    model = ViT(patch=patch, dim=dim, depth=depth, heads=heads, grid=grid)
    model.load_vit_state(state, where)
    model.arch = {"patch": patch, "dim": dim, "depth": depth, "heads": heads, "grid": grid}
    return model.eval()


class DinoKeys:
    """`features(images) -> (affinity [B, N, N], grid (h, w))` for `compute_masks`, from a DINO ViT."""

    def __init__(self, model: ViT):
        self.model = model

    @torch.no_grad()
    def keys(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """[B, h*w, dim] L2-normalised last-layer keys of the patches, and the patch grid."""
        p = self.model.patch
        x = images.float() / 255.0
        size = (max(p, x.shape[-2] // p * p), max(p, x.shape[-1] // p * p))
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        t, h, w = self.model.embed((x - mean) / std)
        for block in self.model.blocks[:-1]:
            t = block(t)
        last = self.model.blocks[-1]
        dim = t.shape[-1]
        keys = last.attn.qkv(last.norm1(t))[..., dim:2 * dim]  # qkv's output is [q | k | v], heads inside each
        return F.normalize(keys[:, 1:], dim=-1), (h, w)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        feats, grid = self.keys(images)
        return (feats @ feats.transpose(1, 2)).clamp_min(0), grid
