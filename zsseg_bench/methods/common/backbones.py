"""Backbones: image -> dense feature map. Registered by name, built from `cfg["backbone"]`.

`small-cnn` is the CPU backbone for the synthetic benchmark: a DeepLab-shaped network in
miniature (a strided stem, a dilated context stack, an ASPP-like sum of dilated 3x3 heads), so
methods written for DeepLabv2 run unchanged on it. The real-scale DeepLabv2 ResNet-101 lives in
its own module (`deeplab.py`, `deeplabv2-resnet101`) and registers here too.

What every backbone offers a method:

* `forward(x, head=None)`: the dense feature map, or `head(features)` when a head function is
  given (a multi-scale backbone applies it to every scale before fusing them; in training
  mode it may return a list of maps whose last element is the fused one).
* `lr_groups()`: named parameter lists for the official learning-rate multipliers:
  `body` (1x), `head_weight` (10x) and `head_bias` (20x, no weight decay) for DeepLab-style
  networks. Frozen parameters are in no group.
* `out_channels`, `output_stride`.

`backbone.init: PATH` loads weights into the backbone right after it is built (official
DeepLab/CaGNet files, a torchvision ResNet-101, or a zsseg-bench checkpoint; see `weights.py`);
what was loaded is in `backbone.init_report`. `backbone.init: shared` loads the synthetic
benchmark's shared initialisation (a small-cnn stem and body pretrained on auxiliary classes,
`zsseg_bench/pretrain/`; schedule in `backbone.pretrain`), which run preparation resolves to a
hash (`backbone.shared_init`) and creates on first use.

The `backbone` config section is `BackboneOptions`: `name`, `init`, `init_parts`, plus the keys
of the named backbone (each builder declares them with `declare_options`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from torch import nn

from zsseg_bench.catalog.schema import Dispatched, PositiveInt, checked, declare_options
from zsseg_bench.pretrain.options import PretrainOptions
from zsseg_bench.registry import Registry

__all__ = ["BACKBONES", "BackboneOptions", "SmallCNNOptions", "SmallCNN", "build_backbone"]

BACKBONES: Registry = Registry("backbone")



class BackboneOptions(Dispatched):
    """The keys every backbone has; `name` picks the rest (the builder's `options`)."""

    dispatch_key = "name"

    name: Annotated[str, AfterValidator(BACKBONES.check_name)] = "small-cnn"
    init: str | None = None  # weights to load right after building (see weights.py), or "shared"
    init_parts: str = "all"  # which named parts must come from the file: all, or e.g. body
    shared_init: str | None = None  # set by run preparation: the hash `init: shared` stands for
    unlisted = ("shared_init",)

    @classmethod
    def lookup(cls, name):
        return getattr(BACKBONES.get(name), "options", None) if name in BACKBONES else None


class SmallCNNOptions(BackboneOptions):
    width: PositiveInt = 32
    dilations: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 2, 4]
    head_dilations: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 3]
    pretrain: PretrainOptions = PretrainOptions()  # the schedule of `init: shared`


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Output stride 2; receptive field about 40 px, enough to see an object's surroundings."""

    weight_parts = {"body": ("stem.", "body."), "head": ("head.",)}

    def __init__(self, out_channels: int, width: int = 32, dilations=(1, 2, 4), head_dilations=(1, 3)):
        super().__init__()
        self.out_channels = out_channels
        self.output_stride = 2
        self.stem = nn.Sequential(_conv_bn_relu(3, width // 2), _conv_bn_relu(width // 2, width, stride=2))
        self.body = nn.Sequential(*[_conv_bn_relu(width, width, dilation=d) for d in dilations])
        # DeepLabv2-style head: parallel dilated 3x3 convolutions whose outputs are summed.
        self.head = nn.ModuleList(nn.Conv2d(width, out_channels, 3, padding=d, dilation=d) for d in head_dilations)

    def forward(self, x, head=None):
        x = self.body(self.stem(x))
        out = sum(conv(x) for conv in self.head)
        return head(out) if head is not None else out

    def lr_groups(self) -> dict[str, list[nn.Parameter]]:
        """Everything but the head at 1x (BN included: it is not frozen here), head weights and biases."""
        body = [p for n, p in self.named_parameters() if not n.startswith("head") and p.requires_grad]
        head = [p for p in self.head.parameters() if p.requires_grad]
        return {"body": body, "head_weight": [p for p in head if p.dim() > 1],
                "head_bias": [p for p in head if p.dim() <= 1]}


@BACKBONES.register("small-cnn")
@declare_options(SmallCNNOptions)
def small_cnn(out_channels: int, cfg: dict) -> SmallCNN:
    return SmallCNN(out_channels, width=cfg["width"], dilations=tuple(cfg["dilations"]),
                    head_dilations=tuple(cfg["head_dilations"]))


def build_backbone(cfg: dict, out_channels: int) -> nn.Module:
    """The backbone a `backbone` section describes (checked here too: builders read its keys directly)."""
    cfg = checked(BackboneOptions, cfg, where="config", owner="", prefix=("backbone",))
    backbone = BACKBONES.get(cfg["name"])(out_channels, cfg)
    backbone.init_report = None
    if cfg["init"] == "shared":
        from zsseg_bench.pretrain.load import load_shared_init

        backbone.init_report = load_shared_init(backbone, cfg)
    elif cfg["init"]:
        from zsseg_bench.engine.weights import load_backbone_weights

        backbone.init_report = load_backbone_weights(backbone, cfg["init"], parts=cfg["init_parts"])
    return backbone

