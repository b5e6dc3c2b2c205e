"""DeepLabv2 ResNet-101, Caffe style: the backbone of the published SPNet, ZS3Net (VOC/Context
re-runs) and CaGNet numbers.

Official code read: github.com/kazuto1011/deeplab-pytorch as forked by SPNet
(subhc/SPNet `libs/models/{deeplabv2,msc,resnet}.py`) and copied by CaGNet (`networks.py`,
`resnet.py`, `blocks.py`). The network is theirs, layer by layer:

* `layer1`: 7x7/2 conv (no bias) + BN + ReLU, then 3x3/2 max-pool with padding 1 and
  **ceil_mode** (368 px -> 93 after the stem, not 92).
* `layer2..layer5`: bottleneck stacks of 3, 4, 23, 3 blocks (256/512/1024/2048 channels).
  Caffe puts a block's stride on its first 1x1 conv ("reduce"), torchvision on the 3x3;
  `stride_at: conv3x3` gives the torchvision placement for torchvision-trained weights.
  `layer3` has stride 2, `layer4`/`layer5` dilation 2/4: output stride 8.
* Every BatchNorm is frozen: it always normalises with its running statistics, never updates
  them (also when the method is put in training mode), and its affine parameters are in no
  optimizer group (`requires_grad` off).
* ASPP (`aspp`): four 3x3 convs with bias on the 2048-d map, dilation = padding = 6/12/18/24,
  outputs **summed**, no BN/ReLU. Its width is the method's feature size (600 for the
  fastText+word2vec embedding of SPNet and CaGNet).
* Multi-scale wrapper (`msc: true`, the official `MSC`): the same network on the image and on
  bilinear 0.5x and 0.75x copies (size int(s * p), align_corners False), plus the element-wise
  max of the three after resizing the small ones to the 1.0 map. Training returns
  `[x1.0, x0.5, x0.75, xmax]`; evaluation returns xmax (`msc_eval: max`, SPNet) or x1.0
  (`msc_eval: scale1`, CaGNet, which computes xmax at test time but classifies x1.0).

Module names follow the official state dicts so their keys map one to one:
`scale.layer1.conv1.conv.weight`, `scale.layer2.block1.reduce.bn.running_mean`,
`scale.layer2.block1.proj.conv.weight`, `scale.aspp.stages.c0.weight`, ... (`weights.py`
loads those files).

A method can pass `head`, a function applied to each scale's output *before* the max: SPNet
projects onto the class embeddings inside the scale network, so its max is over class logits,
not over features (max does not commute with the projection).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Annotated, Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from zsseg_bench.catalog.schema import PositiveFloat, PositiveInt, declare_options
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.backbones import BACKBONES, BackboneOptions

__all__ = ["FrozenBatchNorm2d", "ConvBN", "Bottleneck", "DeepLabV2", "DeepLabV2MSC", "RESNET101_BLOCKS",
           "ASPP_DILATIONS", "PYRAMID_SCALES"]

RESNET101_BLOCKS = (3, 4, 23, 3)
ASPP_DILATIONS = (6, 12, 18, 24)
PYRAMID_SCALES = (0.5, 0.75)
# (in, mid, out, stride, dilation) of layer2..layer5.
_LAYERS = ((64, 64, 256, 1, 1), (256, 128, 512, 2, 1), (512, 256, 1024, 1, 2), (1024, 512, 2048, 1, 4))


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that always uses its running statistics and never changes.

    A subclass, so its state-dict entries (weight, bias, running_mean, running_var,
    num_batches_tracked) are those of the official files."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps=eps)
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: stays in eval mode whatever the parent does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class ConvBN(nn.Module):
    """conv (no bias) + frozen BN [+ ReLU]; the official `_ConvBatchNormReLU` (keys conv.*, bn.*)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False)
        self.bn = FrozenBatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.relu else x


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int, dilation: int, projection: bool,
                 stride_at: str = "reduce"):
        super().__init__()
        s_reduce, s_3x3 = (stride, 1) if stride_at == "reduce" else (1, stride)
        self.reduce = ConvBN(cin, mid, 1, s_reduce)
        self.conv3x3 = ConvBN(mid, mid, 3, s_3x3, dilation, dilation)
        self.increase = ConvBN(mid, cout, 1, relu=False)
        self.proj = ConvBN(cin, cout, 1, stride, relu=False) if projection else None

    def forward(self, x):
        h = self.increase(self.conv3x3(self.reduce(x)))
        return F.relu(h + (self.proj(x) if self.proj is not None else x), inplace=True)


def _res_layer(n_blocks: int, cin: int, mid: int, cout: int, stride: int, dilation: int, stride_at: str):
    blocks = [(f"block{i + 1}", Bottleneck(cin if i == 0 else cout, mid, cout, stride if i == 0 else 1, dilation,
                                           projection=i == 0, stride_at=stride_at)) for i in range(n_blocks)]
    return nn.Sequential(OrderedDict(blocks))


class ASPP(nn.Module):
    """DeepLabv2 ASPP: parallel dilated 3x3 convs, summed (keys stages.c0 .. stages.c3)."""

    def __init__(self, cin: int, cout: int, dilations=ASPP_DILATIONS):
        super().__init__()
        self.stages = nn.ModuleDict({f"c{i}": nn.Conv2d(cin, cout, 3, padding=d, dilation=d, bias=True)
                                     for i, d in enumerate(dilations)})

    def forward(self, x):
        out = None
        for conv in self.stages.values():
            out = conv(x) if out is None else out + conv(x)
        return out


class DeepLabV2(nn.Module):
    """The single-scale network (the official `DeepLabV2`, found under `scale.` in checkpoints)."""

    def __init__(self, out_channels: int, blocks=RESNET101_BLOCKS, aspp_dilations=ASPP_DILATIONS,
                 stride_at: str = "reduce"):
        super().__init__()
        self.layer1 = nn.Sequential(OrderedDict([("conv1", ConvBN(3, 64, 7, 2, 3)),
                                                 ("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))]))
        for k, (n, (cin, mid, cout, stride, dilation)) in enumerate(zip(blocks, _LAYERS)):
            self.add_module(f"layer{k + 2}", _res_layer(n, cin, mid, cout, stride, dilation, stride_at))
        self.aspp = ASPP(2048, out_channels, aspp_dilations)

    def forward(self, x):
        x = self.layer1(x)
        x = self.layer5(self.layer4(self.layer3(self.layer2(x))))
        return self.aspp(x)


class DeepLabV2MSC(nn.Module):
    """DeepLabv2 ResNet-101 with the optional multi-scale wrapper; parameters under `scale.`."""

    # Parts a weight file may initialise on their own (`backbone.init_parts`).
    weight_parts = {"body": ("scale.layer",), "head": ("scale.aspp.",)}

    def __init__(self, out_channels: int, msc: bool = True, msc_eval: str = "max", pyramids=PYRAMID_SCALES,
                 stride_at: str = "reduce", aspp_init: str = "normal", blocks=RESNET101_BLOCKS):
        super().__init__()
        if msc_eval not in ("max", "scale1"):
            raise ZsbenchError(f"backbone.msc_eval must be 'max' or 'scale1', not {msc_eval!r}")
        if stride_at not in ("reduce", "conv3x3"):
            raise ZsbenchError(f"backbone.stride_at must be 'reduce' (Caffe) or 'conv3x3' (torchvision), "
                             f"not {stride_at!r}")
        self.out_channels = out_channels
        self.output_stride = 8
        self.pyramids = tuple(float(p) for p in pyramids) if msc else ()
        self.msc_eval = msc_eval
        self.scale = DeepLabV2(out_channels, blocks, stride_at=stride_at)
        self._init_weights(aspp_init)

    def _init_weights(self, aspp_init: str) -> None:
        # ResNet convs: He init (they are normally replaced by ImageNet weights via backbone.init).
        for name, m in self.scale.named_modules():
            if isinstance(m, nn.Conv2d) and not name.startswith("aspp"):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for conv in self.scale.aspp.stages.values():
            if aspp_init == "normal":  # SPNet / deeplab-pytorch: N(0, 0.01), bias 0
                nn.init.normal_(conv.weight, 0.0, 0.01)
            elif aspp_init == "kaiming":  # CaGNet's weights_init('kaiming'): fan_in, bias 0
                nn.init.kaiming_normal_(conv.weight, mode="fan_in")
            else:
                raise ZsbenchError(f"backbone.aspp_init must be 'normal' or 'kaiming', not {aspp_init!r}")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor] | None = None):
        def run(inp):
            out = self.scale(inp)
            return head(out) if head is not None else out

        full = run(x)
        if not self.pyramids or (not self.training and self.msc_eval == "scale1"):
            return full
        small = []
        for p in self.pyramids:
            size = [int(s * p) for s in x.shape[-2:]]
            small.append(run(F.interpolate(x, size=size, mode="bilinear", align_corners=False)))
        fused = full
        for out in small:
            fused = torch.maximum(fused, F.interpolate(out, size=full.shape[-2:], mode="bilinear",
                                                       align_corners=False))
        return [full, *small, fused] if self.training else fused

    def lr_groups(self) -> dict[str, list[nn.Parameter]]:
        """SPNet/CaGNet groups: ResNet convs (1x), ASPP weights (10x), ASPP biases (20x, no wd).
        Frozen BN parameters are in none."""
        body = [p for n, p in self.scale.named_parameters() if not n.startswith("aspp.") and p.requires_grad]
        head = [(n, p) for n, p in self.scale.aspp.named_parameters() if p.requires_grad]
        return {"body": body, "head_weight": [p for n, p in head if n.endswith("weight")],
                "head_bias": [p for n, p in head if n.endswith("bias")]}

    def compile(self, *args, **kwargs) -> None:
        # Compile the single-scale network only: the wrapper's Python (scales, the method's
        # head function) would otherwise be traced into guards and recompiled per call.
        self.scale.compile(*args, **kwargs)


class DeepLabOptions(BackboneOptions):
    msc: bool = True  # the multi-scale wrapper
    msc_eval: Literal["max", "scale1"] = "max"  # what the wrapper returns at test time (SPNet: max; CaGNet: scale1)
    pyramids: list[PositiveFloat] = list(PYRAMID_SCALES)
    stride_at: Literal["reduce", "conv3x3"] = "reduce"  # Caffe's stride placement, or torchvision's
    aspp_init: Literal["normal", "kaiming"] = "normal"
    blocks: Annotated[list[PositiveInt], Field(min_length=4, max_length=4)] = list(RESNET101_BLOCKS)


@BACKBONES.register("deeplabv2-resnet101")
@declare_options(DeepLabOptions)
def deeplabv2_resnet101(out_channels: int, cfg: dict) -> DeepLabV2MSC:
    return DeepLabV2MSC(out_channels, msc=cfg["msc"], msc_eval=cfg["msc_eval"], pyramids=tuple(cfg["pyramids"]),
                        stride_at=cfg["stride_at"], aspp_init=cfg["aspp_init"], blocks=tuple(cfg["blocks"]))
