"""Every GPU figure the project reports, in one run: `benchmarks/gpu.sh` (this module).

1. Training steps of SPNet and CaGNet step 1 on DeepLabv2 ResNet-101 with the multi-scale wrapper
   (their voc12 cards), batch 8, crop 368: images/s, GFLOP, TFLOP/s and % of the datasheet peak for
   fp32, tf32, bf16, bf16+channels-last and bf16+channels-last+torch.compile (`zsbench bench`'s
   run_bench, so what is timed is the training step itself), with the feature extractor's share.
2. Evaluation at 513 x 513 (SPNet's card), images/s, beside the backbone's own forward time.
3. CaGNet's content MMD: the vectorised run-wise loss vs the per-pixel loop of the official form,
   one VOC-sized step (8 images, 47 x 47 features, 600-d), on the device.
4. Confusion matrices: 182 classes, 8 label maps of 513 x 513, the batched bincount on the device vs
   the plain per-image NumPy loop.

It writes a Markdown section in the format of benchmarks/RESULTS.md (what, command, machine with
the device name, tables) to results/bench/gpu__<stamp>.md and prints it; the JSON of each
`run_bench` goes beside it. `--device cpu --tiny` runs everything at toy sizes with the small
synthetic backbone (the test suite runs it to keep the script working); its numbers mean nothing.

    benchmarks/gpu.sh                      # on a GPU machine, from the repository root
    benchmarks/gpu.sh --device cpu --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from zsseg_bench.report.numbers import format_value
from zsseg_bench.runs.bench import BenchSpec, measure, parse_variants, run_bench

GPU_VARIANTS = "fp32,tf32,bf16,bf16+cl,bf16+cl+compile"


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="toy sizes, small backbone: checks the script runs")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file (default results/bench/gpu__<stamp>.md)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 3; 0 with --tiny)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs, median reported (default 10)")
    return parser.parse_args(argv)


def _plan(a: argparse.Namespace) -> dict:
    """Sizes and variants: the reported ones, or toy ones with --tiny."""
    if a.tiny:
        common = {"dataset": "synthetic", "backbone": "small-cnn", "crop": 32, "batch": 2, "eval_size": 32,
                  "variants": "fp32", "warmup": 0, "repeats": 1}
        return {**common, "mmd": (2, 6, 16), "confusion": (19, 2, 32), "loop_rounds": 1,
                **{k: v for k, v in (("warmup", a.warmup), ("repeats", a.repeats)) if v is not None}}
    variants = GPU_VARIANTS if a.device.startswith("cuda") else "fp32,bf16,bf16+cl"  # TF32 is CUDA-only
    return {"dataset": "voc12", "backbone": None, "crop": 368, "batch": 8, "eval_size": 513, "variants": variants,
            "warmup": 3 if a.warmup is None else a.warmup, "repeats": 10 if a.repeats is None else a.repeats,
            "mmd": (8, 47, 600), "confusion": (182, 8, 513), "loop_rounds": 1}


def _bench(method: str, plan: dict, device: str, train: bool, evaluate: bool) -> dict:
    spec = BenchSpec(method=method, dataset=plan["dataset"], backbone=plan["backbone"], crop=plan["crop"],
                     batch=plan["batch"], eval_size=plan["eval_size"], eval_batch=plan["batch"],
                     variants=parse_variants(plan["variants"]), device=device, warmup=plan["warmup"],
                     repeats=plan["repeats"], train=train, evaluate=evaluate)
    return run_bench(spec)


def _num(value, spec: str = ".3g") -> str:
    return format_value(value, spec)


def _train_table(results: dict[str, dict]) -> list[str]:
    lines = ["| method | variant | img/s | s/step | GFLOP/step | TFLOP/s | % of peak | features share | max mem GiB |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for method, result in results.items():
        for row in result["results"]:
            frac = row.get("train_peak_fraction")
            lines.append(f"| {method} | {row['variant']} | {_num(row['train_images_per_s'])} | "
                         f"{_num(row['train_step_s'])} | {_num(row['train_gflop_per_step'], '.4g')} | "
                         f"{_num(row['train_tflops_achieved'])} | {_num(None if frac is None else 100 * frac, '.1f')} | "
                         f"{_num(row.get('train_features_share'), '.0%')} | {_num(row.get('max_memory_gib'), '.2f')} |")
    return lines


def _eval_table(result: dict) -> list[str]:
    lines = ["| variant | img/s | s/batch | backbone forward s/batch | backbone share | TFLOP/s | % of peak |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in result["results"]:
        frac, feat = row.get("eval_peak_fraction"), row.get("eval_features_s")
        lines.append(f"| {row['variant']} | {_num(row['eval_images_per_s'])} | {_num(row['eval_step_s'])} | "
                     f"{_num(feat)} | {_num(None if feat is None else feat / row['eval_step_s'], '.0%')} | "
                     f"{_num(row['eval_tflops_achieved'])} | {_num(None if frac is None else 100 * frac, '.1f')} |")
    return lines


def _speedup(name: str, fast, slow, device: torch.device, plan: dict) -> dict:
    fast_s = statistics.median(measure(fast, device, plan["warmup"], max(plan["repeats"], 1)))
    slow_s = statistics.median(measure(slow, device, 0, plan["loop_rounds"]))
    return {"what": name, "fast_s": fast_s, "slow_s": slow_s, "ratio": slow_s / fast_s}


def _content_mmd(device: torch.device, plan: dict) -> dict:
    from tests.helpers.cagnet_reference import content_mmd_loop
    from zsseg_bench.methods.cagnet.losses import content_mmd_runs

    b, h, d = plan["mmd"]
    g = torch.Generator().manual_seed(7)
    label = torch.full((b, h, h), 255, dtype=torch.long)
    for i in range(b):  # three rectangular objects of random classes per image, on an ignored background
        for _ in range(3):
            y, x = torch.randint(0, h - 4, (2,), generator=g).tolist()
            hh, ww = torch.randint(3, max(4, h // 2), (2,), generator=g).tolist()
            label[i, y:y + hh, x:x + ww] = int(torch.randint(15, (1,), generator=g))
    fake, real = torch.rand(b, d, h, h, generator=g).to(device), torch.rand(b, d, h, h, generator=g).to(device)
    label = label.to(device)
    return _speedup(f"content MMD, {b} x {d} x {h} x {h}", lambda: float(content_mmd_runs(fake, real, label,
                                                                                         label != 255)),
                    lambda: float(content_mmd_loop(fake, real, label, 255)), device, plan)


def _confusion(device: torch.device, plan: dict) -> dict:
    from zsseg_bench.metrics import ConfusionMeter

    k, b, s = plan["confusion"]
    rng = np.random.default_rng(0)
    target = rng.integers(0, k, (b, s, s)).astype(np.int64)
    target[rng.random(target.shape) < 0.1] = 255
    pred = rng.integers(0, k, (b, s, s)).astype(np.int64)
    p, t = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)

    def batched():
        meter = ConfusionMeter(k, 255)
        meter.update(p, t)
        return meter.numpy()

    def per_image_numpy():  # the plain reference, on the host
        hist = np.zeros((k, k), dtype=np.int64)
        for pi, ti in zip(pred, target):
            keep = (ti >= 0) & (ti < k)
            hist += np.bincount(k * ti[keep] + pi[keep], minlength=k * k).reshape(k, k)
        return hist

    assert (batched() == per_image_numpy()).all()
    return _speedup(f"confusion matrix, {k} classes, {b} x {s} x {s}", batched, per_image_numpy, device, plan)


def _markdown(a, plan: dict, train: dict, evaluation: dict, speedups: list[dict], command: str) -> str:
    first = evaluation
    lines = [f"## GPU figures: `benchmarks/gpu.sh` on {first['device_name']}" + (" (--tiny: toy sizes, numbers "
             "mean nothing)" if a.tiny else ""), "",
             "What: training steps (batch {batch}, crop {crop}) and evaluation ({eval_size} px) of "
             "`zsbench bench` (dataset {dataset}'s cards{bb}), median of {repeats} after {warmup} warm-up; "
             "the content-MMD and confusion-matrix speed-ups on the same device.".format(
                 **plan, bb=f", backbone {plan['backbone']}" if plan["backbone"] else ", DeepLabv2 ResNet-101 "
                 "multi-scale"), "", "Command (from the repository root, in the project's venv):", "", "```bash",
             command, "```", "",
             f"Machine: {first['device_name']} ({first['device']}), torch {first['torch']}, "
             f"CUDA {torch.version.cuda or '-'}, {os.cpu_count()} CPU cores, "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}.", "", "### Training step", "", *_train_table(train), "",
             "### Evaluation beside the backbone's forward", "", *_eval_table(evaluation), "", "### Speed-ups", "",
             "| what | fast s | reference s | ratio |", "| --- | ---: | ---: | ---: |"]
    for s in speedups:
        lines.append(f"| {s['what']} | {_num(s['fast_s'])} | {_num(s['slow_s'])} | {_num(s['ratio'], '.1f')}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    a = _args(argv)
    plan = _plan(a)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {a.device}: no CUDA device here; use --device cpu (with --tiny to test the "
              f"script)", file=sys.stderr)
        return 2
    command = shlex.join(["benchmarks/gpu.sh", *(sys.argv[1:] if argv is None else argv)])
    train = {m: _bench(m, plan, a.device, train=True, evaluate=False) for m in ("spnet", "cagnet-pi")}
    evaluation = _bench("spnet", plan, a.device, train=False, evaluate=True)
    speedups = [_content_mmd(device, plan), _confusion(device, plan)]
    text = _markdown(a, plan, train, evaluation, speedups, command)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = a.out or Path("results/bench") / f"gpu__{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    raw = {"train": train, "eval": evaluation, "speedups": speedups}
    out.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    print(text)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
