"""Backbones: image -> dense feature map. Registered by name, built from `cfg["backbone"]`.

`small-cnn` is the CPU backbone for the synthetic benchmark: a DeepLab-shaped network in
miniature (a strided stem, a dilated context stack, an ASPP-like sum of dilated 3x3 heads), so
methods written for DeepLabv2 run unchanged on it. The real-scale DeepLabv2 ResNet-101 lives in
its own module and registers here too.
"""

from __future__ import annotations

from torch import nn

from ...registry import Registry

__all__ = ["BACKBONES", "SmallCNN", "build_backbone"]

BACKBONES: Registry = Registry("backbone")


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Output stride 2; receptive field about 40 px, enough to see an object's surroundings."""

    def __init__(self, out_channels: int, width: int = 32, dilations=(1, 2, 4), head_dilations=(1, 3)):
        super().__init__()
        self.out_channels = out_channels
        self.output_stride = 2
        self.stem = nn.Sequential(_conv_bn_relu(3, width // 2), _conv_bn_relu(width // 2, width, stride=2))
        self.body = nn.Sequential(*[_conv_bn_relu(width, width, dilation=d) for d in dilations])
        # DeepLabv2-style head: parallel dilated 3x3 convolutions whose outputs are summed.
        self.head = nn.ModuleList(nn.Conv2d(width, out_channels, 3, padding=d, dilation=d) for d in head_dilations)

    def forward(self, x):
        x = self.body(self.stem(x))
        return sum(conv(x) for conv in self.head)


@BACKBONES.register("small-cnn")
def small_cnn(out_channels: int, cfg: dict) -> SmallCNN:
    return SmallCNN(out_channels, width=cfg.get("width", 32), dilations=tuple(cfg.get("dilations", (1, 2, 4))),
                    head_dilations=tuple(cfg.get("head_dilations", (1, 3))))


def build_backbone(cfg: dict, out_channels: int) -> nn.Module:
    return BACKBONES.get(cfg.get("name", "small-cnn"))(out_channels, cfg)
