"""SAZS and its plain baseline (cards sazs, lseg-zs)."""

from zsseg_bench.methods.sazs import model  # noqa: F401  registers the implementation
