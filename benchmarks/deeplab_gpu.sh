#!/usr/bin/env bash
# The GPU measurements issue 4 asks for: DeepLabv2-ResNet-101 with the multi-scale wrapper
# (SPNet's voc12 card), training at batch 8, crop 368, and evaluation at 513, for FP32, bf16,
# bf16 + channels-last and bf16 + channels-last + torch.compile (plus TF32 for reference).
# Usage: benchmarks/deeplab_gpu.sh [device]   (default cuda). Writes results/bench/*.json and
# prints the table to copy into benchmarks/RESULTS.md with the device name and this command.
set -euo pipefail
device="${1:-cuda}"
zsbench bench spnet --dataset voc12 --crop 368 --batch 8 --eval-size 513 --eval-batch 8 \
  --device "$device" --warmup 5 --repeats 20 \
  --variants fp32,tf32,bf16,bf16+cl,bf16+cl+compile
