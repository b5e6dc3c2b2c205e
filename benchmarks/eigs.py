"""Eigen-mask throughput (`zsbench sazs eigs`): images per second of the Laplacian eigen-masks.

Two graph sizes, both on the synthetic benchmark's test images and the library functions the
command uses (protocols/eigs.py):

* 64x64 images at feature stride 4: 16x16 = 256-node graphs, dense batched `torch.linalg.eigh`
  (a batch of `--batch` images per call); the synthetic setting of the sazs card.
* 512x512 images (the synthetic images upsampled, as SAZS's test resize) at feature stride 8:
  64x64 = 4,096-node graphs, `torch.lobpcg` per image (dense eigh of a 4,096 x 4,096 matrix per
  image would be the alternative).

    python -m benchmarks.eigs                       # from the repository root
    OMP_NUM_THREADS=1 python -m benchmarks.eigs --images 64 --large-images 4
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F

from zsseg_bench.datasets import build_dataset
from zsseg_bench.protocols.eigs import masks_from_images


def rate(images: torch.Tensor, size: int, stride: int, batch: int) -> float:
    """Images per second of masks_from_images over `images` resized to size x size."""
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        if chunk.shape[-1] != size:
            chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False)
        masks_from_images(chunk, (size, size), k=5, stride=stride)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128, help="64x64 images timed")
    parser.add_argument("--large-images", type=int, default=4, help="512x512 images timed")
    parser.add_argument("--batch", type=int, default=32, help="images per dense eigh call")
    args = parser.parse_args()
    data = build_dataset("synthetic", "test", None, {})
    n = max(args.images, args.large_images)
    images = torch.stack([data[i]["image"].float() for i in range(n)])
    masks_from_images(images[:2], (64, 64))  # warm-up (library loading)
    small = rate(images[: args.images], 64, 4, args.batch)
    large = rate(images[: args.large_images], 512, 8, 1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"64x64 images, stride 4 (256-node graphs, dense eigh, batch {args.batch}): {small:.1f} images/s")
    print(f"512x512 images, stride 8 (4096-node graphs, lobpcg): {large:.2f} images/s")


if __name__ == "__main__":
    main()
