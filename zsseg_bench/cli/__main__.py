"""`python -m zsseg_bench.cli ...`: what torchrun starts in each process (zsbench run --gpus N)."""

from zsseg_bench.cli import main

main()
