"""Throughput of a method's training step and of its evaluation (`zsbench bench`).

What is timed is the model on the device, not data loading: a training step is the engine's
own step (`engine.loop.train_step`, the one training runs: the method's `training_step` under
autocast, the finite check, backward, the gradient all-reduce (none on one process), the
optimizer and scheduler steps) on a batch already on the device (normalised, labels mapped);
evaluation is `predict` at the evaluation size plus the argmax. Each is run `warmup` times
(which also absorbs torch.compile's compilation and cuDNN autotuning), then `repeats` times;
the median is reported. On CUDA each repeat is timed with CUDA events, on CPU with
`time.perf_counter`.

FLOPs are those of one step as `torch.utils.flop_counter.FlopCounterMode` counts them
(convolutions and matrix products, forward and backward; elementwise work is not counted),
measured on the eager model before any torch.compile. The achieved fraction of the device's
peak is FLOPs / median time / peak, where the peak is the dense (no sparsity) datasheet
number for the precision in use (`PEAKS`); it is left empty for devices not in the table and
for CPUs, whose peak depends on the core count, clocks and vector units in a way we cannot
state reliably.

Where a method names its feature extractor (`Method.bench_features`: the backbone by default,
backbone + contextual module for CaGNet), its forward + backward is also timed alone, and the
row reports that time and its share of the training step; the rest is the method's heads,
generators, losses and optimizer steps.

Variants are written `precision[+cl][+compile]`, e.g. `fp32`, `tf32`, `bf16`, `bf16+cl`,
`bf16+cl+compile` (cl = channels-last; tf32 = fp32 with TF32 tensor cores allowed).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zsseg_bench.engine import loop as engine_loop  # its train_step looked up at call time: one step, patchable
from zsseg_bench.engine.options import EngineOptions, autocast, prepare_method
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.prepare import RunRequest, prepare_run, resolve_device

__all__ = ["BenchSpec", "Variant", "parse_variants", "run_bench", "measure", "peak_tflops", "PEAKS"]

# Dense peak TFLOP/s per GPU from NVIDIA's datasheets: (name pattern, {fp32, tf32, bf16}).
# First match wins, so the more specific patterns come first.
PEAKS: list[tuple[str, dict[str, float]]] = [
    (r"H100.*PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    (r"H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),  # SXM5 ("H100 80GB HBM3")
    (r"H200", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),  # SXM
    (r"A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    (r"V100", {"fp32": 15.7}),  # SXM2; no TF32 or bf16 tensor cores
    (r"\bL4\b", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0}),
]


def peak_tflops(device_name: str, precision: str) -> float | None:
    for pattern, peaks in PEAKS:
        if re.search(pattern, device_name):
            return peaks.get(precision)
    return None


@dataclass(frozen=True)
class Variant:
    precision: str = "fp32"  # fp32 | tf32 | bf16
    channels_last: bool = False
    compile: bool = False

    @property
    def name(self) -> str:
        extras = (["cl"] if self.channels_last else []) + (["compile"] if self.compile else [])
        return "+".join([self.precision, *extras])

    def options(self) -> EngineOptions:
        return EngineOptions(precision="bf16" if self.precision == "bf16" else "fp32", tf32=self.precision == "tf32",
                             channels_last=self.channels_last, compile=self.compile)


def parse_variants(text: str) -> list[Variant]:
    out = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        parts = item.split("+")
        if parts[0] not in ("fp32", "tf32", "bf16") or any(p not in ("cl", "compile") for p in parts[1:]):
            raise ZsbenchError(f"--variants {item!r}: write precision[+cl][+compile] with precision fp32, tf32 or "
                               f"bf16, e.g. fp32,bf16,bf16+cl,bf16+cl+compile")
        out.append(Variant(parts[0], "cl" in parts[1:], "compile" in parts[1:]))
    if not out:
        raise ZsbenchError("--variants: give at least one, e.g. fp32")
    return out


@dataclass
class BenchSpec:
    method: str = "spnet"
    dataset: str = "synthetic"
    split: str | None = None
    backbone: str | None = None
    crop: int = 321
    batch: int = 8
    eval_size: int = 513
    eval_batch: int | None = None
    variants: list[Variant] = field(default_factory=lambda: [Variant()])
    device: str = "cpu"
    warmup: int = 2
    repeats: int = 5
    embed_dim: int | None = None
    overrides: list[str] = field(default_factory=list)
    train: bool = True
    evaluate: bool = True
    seed: int = 0


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _timer(device: torch.device):
    if device.type == "cuda":
        def timed(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
    else:
        def timed(fn):
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
    return timed


def measure(fn, device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls of `fn` after `warmup` untimed ones (CUDA events on CUDA)."""
    timed = _timer(device)
    for _ in range(warmup):
        timed(fn)
    return [timed(fn) for _ in range(repeats)]


def _count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _setup(spec: BenchSpec, variant: Variant, device: torch.device):
    """The run prepared as training prepares it, without data: random class vectors, no init weights,
    the engine options left to the variant; and a maker of random batches on the device."""
    from zsseg_bench.datasets import dataset_info

    gen = torch.Generator().manual_seed(spec.seed)
    dim = spec.embed_dim or (32 if dataset_info(spec.dataset).synthetic else 600)

    def random_embeddings(split) -> np.ndarray:
        return torch.nn.functional.normalize(torch.randn(split.num_classes, dim, generator=gen), dim=1).numpy()

    # Timing needs no weight file (backbone.init=null), and the variants set the engine (engine={}).
    overrides = [*spec.overrides, *([f"backbone.name={spec.backbone}"] if spec.backbone else []),
                 "backbone.init=null", "engine={}"]
    run = prepare_run(RunRequest(method=spec.method, dataset=spec.dataset, split=spec.split, seed=spec.seed,
                                 device=str(device), overrides=overrides),
                      data=False, training=False, embeddings=random_embeddings)
    ctx = run.context()
    split = run.split
    raw_ids = np.array([split.classes.id_of(n) for n in split.eval_names])

    def make_batch(n: int, size: int, lut: torch.Tensor) -> dict:
        images = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
        labels = torch.from_numpy(raw_ids[torch.randint(0, len(raw_ids), (n, size, size), generator=gen).numpy()])
        batch = ctx.to_device({"image": images, "label": labels, "index": torch.arange(n),
                               "name": [f"bench/{i}" for i in range(n)]}, lut)
        if variant.channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        return batch

    return run.method, ctx, make_batch


def run_bench(spec: BenchSpec) -> dict:
    """Measure every variant; returns {"spec": ..., "device_name": ..., "results": [row per variant]}."""
    from zsseg_bench.runs.records import environment

    device = resolve_device(spec.device)
    env = environment(str(device))
    if device.type == "cpu":
        env["device_name"] = _cpu_name() or env["device_name"]
    rows = [_bench_variant(spec, variant, device, env["device_name"]) for variant in spec.variants]
    spec_out = {k: v for k, v in vars(spec).items() if k != "variants"}
    spec_out["variants"] = [v.name for v in spec.variants]
    return {"spec": spec_out, "device": str(device), "device_name": env["device_name"],
            "torch": env["torch"], "threads": env["torch_threads"], "environment": env,
            # other processes on the machine slow a CPU measurement down; this says how busy it was
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "results": rows}


def _bench_variant(spec: BenchSpec, variant: Variant, device: torch.device, device_name: str) -> dict:
    if variant.precision == "tf32" and device.type != "cuda":
        raise ZsbenchError("variant tf32: TF32 exists on CUDA devices only; use fp32 on CPU")
    opts = variant.options()
    restore = opts.apply_global(device)
    try:
        return _measure_variant(spec, variant, opts, device, device_name)
    finally:
        restore()


def _measure_variant(spec: BenchSpec, variant: Variant, opts: EngineOptions, device: torch.device,
                     device_name: str) -> dict:
    method, ctx, make_batch = _setup(spec, variant, device)
    stage = method.stages()[0]
    batch = make_batch(spec.batch, spec.crop, ctx.train_lut) if spec.train else None
    eval_batch = spec.eval_batch or spec.batch
    images = make_batch(eval_batch, spec.eval_size, ctx.eval_lut)["image"] if spec.evaluate else None
    size = (spec.eval_size, spec.eval_size)

    def train_step(optimizers):
        try:
            engine_loop.train_step(method, stage, batch, 0, optimizers, device, opts.precision)
        except engine_loop.NonFiniteLoss as bad:
            raise ZsbenchError(f"bench {spec.method} {variant.name}: {bad} in a training step (training would stop "
                               f"there); check the --set values") from None

    def features_step():
        # Forward and backward of the feature extractor alone (a sum of its outputs as the loss).
        method.train()
        with autocast(device, opts.precision):
            out = method.bench_features(batch["image"])
        outs = out if isinstance(out, (list, tuple)) else [out]
        total = sum(o.float().sum() for o in outs)
        if total.requires_grad:
            total.backward()
        method.zero_grad(set_to_none=True)

    def eval_step():
        method.eval()
        with torch.no_grad(), autocast(device, opts.precision):
            method.predict(images, size).argmax(1)

    # FLOPs on the eager model, before channels-last and compilation (same arithmetic).
    train_flops = _count_flops(lambda: train_step(method.configure_optimizers(stage))) if spec.train else 0
    eval_flops = _count_flops(eval_step) if spec.evaluate else 0
    prepare_method(method, opts)
    row = {"variant": variant.name}
    if spec.train:
        optimizers = method.configure_optimizers(stage)
        times = measure(lambda: train_step(optimizers), device, spec.warmup, spec.repeats)
        row.update(_summary("train", times, spec.batch, train_flops, device_name, variant.precision, device))
        with torch.no_grad():
            has_features = method.bench_features(batch["image"][:1]) is not None
        if has_features:
            # Where a step's time goes: feature extraction (forward + backward) vs everything else.
            feat = statistics.median(measure(features_step, device, spec.warmup, spec.repeats))
            row["train_features_s"] = feat
            row["train_features_share"] = min(1.0, feat / row["train_step_s"])
    if spec.evaluate:
        times = measure(eval_step, device, spec.warmup, spec.repeats)
        row.update(_summary("eval", times, eval_batch, eval_flops, device_name, variant.precision, device))
        row.update(_eval_features(method, images, opts, device, spec))
    if device.type == "cuda":
        row["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        torch.cuda.reset_peak_memory_stats(device)
    return row


def _eval_features(method, images: torch.Tensor, opts: EngineOptions, device: torch.device, spec: BenchSpec) -> dict:
    """The feature extractor's own forward on the evaluation images (beside the whole evaluation's time)."""
    def forward():
        with torch.no_grad(), autocast(device, opts.precision):
            return method.bench_features(images)

    method.eval()
    if forward() is None:
        return {}
    return {"eval_features_s": statistics.median(measure(forward, device, spec.warmup, spec.repeats))}


def _summary(kind: str, times: list[float], n: int, flops: int, device_name: str, precision: str,
             device: torch.device) -> dict:
    median = statistics.median(times)
    achieved = flops / median / 1e12
    peak = peak_tflops(device_name, precision) if device.type == "cuda" else None
    return {
        f"{kind}_images_per_s": n / median,
        f"{kind}_step_s": median,
        f"{kind}_step_s_all": times,
        f"{kind}_gflop_per_step": flops / 1e9,
        f"{kind}_tflops_achieved": achieved,
        f"{kind}_peak_tflops": peak,
        f"{kind}_peak_fraction": achieved / peak if peak else None,
    }
