#!/usr/bin/env bash
# Every GPU figure the project reports, in one run (under 5 minutes on one GPU): training steps of
# SPNet and CaGNet step 1 (DeepLabv2 multi-scale, batch 8, crop 368; fp32, tf32, bf16, bf16+cl,
# bf16+cl+compile, % of peak), evaluation at 513 beside the backbone's forward, and the content-MMD
# and confusion-matrix speed-ups. Writes results/bench/gpu__<stamp>.md in the format of
# benchmarks/RESULTS.md (see benchmarks/gpu.py).
#   benchmarks/gpu.sh                       on a GPU machine, from the repository root
#   benchmarks/gpu.sh --device cpu --tiny   toy sizes: checks the script (the test suite runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then python=.venv/bin/python; fi
exec "$python" -m benchmarks.gpu "$@"
