"""`python -m zsseg_bench.cli ...`: what torchrun starts in each process (zsbench run --gpus N)."""

from . import main

main()
