"""Generation time of the synthetic benchmark: the sets a default `zsbench run` builds, per version.

Times, in one process and from a cold in-memory cache, the train and test parts at the default
sizes (1,500 and 500 images of 64 px) for versions 1 and 2, the val part (300) and the auxiliary
part of version 2 (2,000 images, what a shared initialisation could train on). Each figure is the
best of `--repeats` builds (the in-memory cache is cleared before each).

    python -m benchmarks.synthetic_generation             # from the repository root
    python -m benchmarks.synthetic_generation --repeats 3 --size 64
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from zsseg_bench.datasets.synthetic import aux_dataset
from zsseg_bench.datasets.synthetic.generate import render_set, world


def best_of(repeats: int, build) -> float:
    times = []
    for _ in range(repeats):
        render_set.cache_clear()
        world.cache_clear()
        start = time.perf_counter()
        build()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--aux-images", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, best of {args.repeats}")
    print("| what | images | seconds | ms/image |\n| --- | ---: | ---: | ---: |")
    jobs = [(f"v{v} {part}", n, (lambda v=v, part=part, n=n: render_set(v, 0, part, n, args.size)))
            for v in (1, 2) for part, n in (("train", 1500), ("test", 500), ("val", 300))]
    jobs.append(("v2 aux", args.aux_images, lambda: aux_dataset(0, 2, args.aux_images, args.size)))
    for name, n, build in jobs:
        seconds = best_of(args.repeats, build)
        print(f"| {name} | {n} | {seconds:.2f} | {1000 * seconds / n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
