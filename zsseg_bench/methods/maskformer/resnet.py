"""ResNet-50 with four output levels (res2..res5, strides 4..32): MaskFormer's R-50 backbone.

Built from the DeepLab module's blocks with torchvision's stride placement (`conv3x3`) and no
dilation, and named as deeplab-pytorch names them (`scale.layer1.conv1`, `scale.layer2.block1.reduce`,
...), so an ImageNet torchvision `resnet50` state dict loads with the harness's weight loader
(`backbone.init: PATH`, `init_parts: body`; weights.py maps torchvision's keys). Every BatchNorm
is frozen, as detectron2's FrozenBN in MaskFormer's R-50 configs; the stem's max-pool uses
torchvision's floor rounding. The final ImageNet classifier is not part of it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from zsseg_bench.catalog.schema import declare_options
from zsseg_bench.methods.common.backbones import BACKBONES, BackboneOptions
from zsseg_bench.methods.common.deeplab import Bottleneck, ConvBN

__all__ = ["ResNetPyramid", "RESNET50_BLOCKS"]

RESNET50_BLOCKS = (3, 4, 6, 3)
_WIDTHS = ((64, 64, 256, 1), (256, 128, 512, 2), (512, 256, 1024, 2), (1024, 512, 2048, 2))


def _stage(n: int, cin: int, mid: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        (f"block{i + 1}", Bottleneck(cin if i == 0 else cout, mid, cout, stride if i == 0 else 1, 1, projection=i == 0,
                                     stride_at="conv3x3")) for i in range(n)))


class _Body(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.layer1 = nn.Sequential(OrderedDict([("conv1", ConvBN(3, 64, 7, 2, 3)), ("pool", nn.MaxPool2d(3, 2, 1))]))
        for k, (n, (cin, mid, cout, stride)) in enumerate(zip(blocks, _WIDTHS)):
            self.add_module(f"layer{k + 2}", _stage(n, cin, mid, cout, stride))


class ResNetPyramid(nn.Module):
    """`pyramid(x)` -> [res2, res3, res4, res5]; `forward(x)` -> res5."""

    weight_parts = {"body": ("scale.",)}
    pyramid_channels = (256, 512, 1024, 2048)

    def __init__(self, blocks=RESNET50_BLOCKS):
        super().__init__()
        self.scale = _Body(blocks)
        self.out_channels = 2048
        self.output_stride = 32

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.scale.layer1(x)
        out = []
        for name in ("layer2", "layer3", "layer4", "layer5"):
            x = getattr(self.scale, name)(x)
            out.append(x)
        return out

    def forward(self, x, head=None):
        out = self.pyramid(x)[-1]
        return head(out) if head is not None else out

    def lr_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"body": [p for p in self.parameters() if p.requires_grad], "head_weight": [], "head_bias": []}


@BACKBONES.register("resnet50-pyramid")
@declare_options(BackboneOptions)
def resnet50_pyramid(out_channels: int, cfg: dict) -> ResNetPyramid:
    """`out_channels` is unused: the levels keep ResNet's widths (the pixel decoder projects them)."""
    return ResNetPyramid()
