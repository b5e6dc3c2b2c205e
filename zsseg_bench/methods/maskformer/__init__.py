"""MaskFormer-style weak-shot segmentation: maskformer-ws, maskformer-full and SimFormer (method.py)."""

from zsseg_bench.methods.maskformer import method, resnet  # noqa: F401  (register the implementation, backbone)
