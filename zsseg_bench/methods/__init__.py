"""Method implementations. Importing this package registers every implementation and backbone."""

from zsseg_bench.methods import sazs, self_training, spnet, zs3net  # noqa: F401  (self_training resolves "<impl>+st")
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, Stage, Update
from zsseg_bench.methods.cagnet import model, patch  # noqa: F401
from zsseg_bench.methods.common import deeplab, vit  # noqa: F401  register deeplabv2-resnet101 and dpt-vit
from zsseg_bench.methods.maskformer import method as _maskformer  # noqa: F401,E402  maskformer, resnet50-pyramid
from zsseg_bench.registry import load_plugins

__all__ = ["IMPLEMENTATIONS", "ClassSpace", "Method", "Stage", "Update"]

# Last, so that a plugin method (ZSBENCH_PLUGINS) finds every built-in implementation and backbone.
load_plugins()
