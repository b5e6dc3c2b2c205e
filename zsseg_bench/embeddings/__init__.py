"""Class embeddings: providers that return one vector per raw label id, and the split view."""

from zsseg_bench.embeddings import clip, providers  # noqa: F401  registers the providers for real datasets
from zsseg_bench.embeddings.base import EMBEDDINGS, normalize_rows, split_embeddings

__all__ = ["EMBEDDINGS", "split_embeddings", "normalize_rows"]
