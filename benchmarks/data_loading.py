"""Training-pipeline throughput on real-layout data: images per second out of the DataLoader.

Writes a Pascal-VOC devkit folder of 500x375 JPEGs with palette PNG masks (the size of a typical
VOC image), then times the loader `RunContext.loader` builds for a run of `spnet` on `voc12`
(SPNet's pipeline: decode, warp to 513x513, random scale 0.5-1.5, pad to 513, random 321 crop,
batch 10, int64 masks), for each number of DataLoader workers. The first batches (worker start-up)
are not timed. Nothing is sent to a device: this is what the data side can deliver.

    python -m benchmarks.data_loading                     # 200 images, workers 0 1 2 (from the repository root)
    python -m benchmarks.data_loading --images 500 --workers 0 2 4 --batches 40 --pin-memory
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from tests.helpers.configs import card_config
from tests.helpers.datasets import make_voc_devkit
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.datasets import build_dataset
from zsseg_bench.engine.context import RunContext


def measure(root: Path, workers: int, batches: int, warmup: int, pin_memory: bool, batch_size: int) -> float:
    overrides = [f"data.num_workers={workers}", f"data.pin_memory={str(pin_memory).lower()}",
                 f"data.batch_size={batch_size}"]
    cfg = card_config("spnet", "voc12", overrides)  # validated, as a run's config is
    split = load_split("voc12-15-5")
    dataset = build_dataset("voc12", "train", str(root), {"classes": "voc12"})
    ctx = RunContext(split=split, train_set=dataset, device=torch.device("cpu"), seed=0, cfg=cfg)
    loader = ctx.loader(gen=torch.Generator().manual_seed(0))

    def endless():
        while True:  # epochs over the same (persistent) workers
            yield from loader

    batches_out = endless()
    for _ in range(max(1, warmup)):
        next(batches_out)
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += next(batches_out)["image"].shape[0]
    rate = seen / (time.perf_counter() - start)
    batches_out.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200, help="training images to generate (500x375)")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batches", type=int, default=30, help="timed batches per setting")
    ap.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--pin-memory", action="store_true", help="pin batches (only takes effect with an accelerator)")
    ap.add_argument("--root", type=Path, default=None, help="reuse/keep the generated tree here")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the main process (workers always use 1); 1 avoids OpenMP "
                         "oversubscription when the transforms run in the main process (workers 0)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.pin_memory and not torch.cuda.is_available():
        print("pin_memory requested, but there is no accelerator: torch would skip pinning, so it is off")
        args.pin_memory = False
    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="zsbench-loading-")
        root = Path(tmp.name)
    if not (root / "VOCdevkit").is_dir():
        t = time.perf_counter()
        make_voc_devkit(root, n_train=args.images, n_val=1, size=(375, 500))
        print(f"generated {args.images} 500x375 JPEG + palette PNG pairs in {time.perf_counter() - t:.1f} s at {root}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}, pin_memory={args.pin_memory}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print("| workers | images/s | ms/image |")
    print("| ---: | ---: | ---: |")
    for w in args.workers:
        rate = measure(root, w, args.batches, args.warmup, args.pin_memory, args.batch_size)
        print(f"| {w} | {rate:.1f} | {1000 / rate:.1f} |", flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
