"""Class embeddings: providers that return one vector per raw label id, and the split view.

A provider is registered by name and called as ``provider(split, dataset, cfg) -> ndarray``
with one row per raw label id of the split's class list (NaN rows are allowed for ids that have
no vector, as long as no evaluation class needs them). `split_embeddings` then picks the rows
of the split's evaluation classes, in evaluation order, and applies the normalisation the
method asks for (default ``l2``, or the provider's own ``default_normalize``). The shape is
checked against the class list; a mismatch names both. The providers for real datasets
(official word-vector tables, user tables, a text model) are in `providers.py`.

The `embeddings` config section is `EmbeddingOptions`: `provider`, `normalize` and the keys of
that provider (each provider declares them with `declare_options`).
"""

from __future__ import annotations

from typing import Annotated, Callable, Literal

import numpy as np
from pydantic import AfterValidator

from zsseg_bench.catalog.schema import Dispatched, checked, declare_options
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.registry import Registry

__all__ = ["EMBEDDINGS", "EmbeddingOptions", "split_embeddings", "normalize_rows"]

EMBEDDINGS: Registry[Callable[..., np.ndarray]] = Registry("embedding provider")



class EmbeddingOptions(Dispatched):
    """`provider` picks the rest of the keys; `normalize` unset: the provider's own default (l2,
    none for zs3-w2v, whose scaling is the point)."""

    dispatch_key = "provider"

    provider: Annotated[str, AfterValidator(EMBEDDINGS.check_name)]
    normalize: Literal["l2", "none"] | None = None

    @classmethod
    def lookup(cls, name):
        return getattr(EMBEDDINGS.get(name), "options", None) if name in EMBEDDINGS else None


def normalize_rows(table: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    return table / np.where(norms > 0, norms, 1.0)


@EMBEDDINGS.register("dataset")
@declare_options(EmbeddingOptions)
def dataset_embeddings(split, dataset, cfg: dict) -> np.ndarray:
    """Vectors supplied by the dataset itself (the synthetic benchmark's class embeddings)."""
    table = dataset.class_embeddings() if dataset is not None else None
    if table is None:
        raise ZsbenchError(f"dataset {split.dataset!r} supplies no class embeddings; choose a provider with "
                           f"--set embeddings.provider=... (see 'zsbench ls embeddings')")
    return np.asarray(table, dtype=np.float32)


def split_embeddings(split, dataset, cfg: dict | None) -> np.ndarray:
    """[K, D] float32 embeddings of the split's evaluation classes, in evaluation order."""
    cfg = checked(EmbeddingOptions, cfg, where="config", owner="", prefix=("embeddings",))
    provider = cfg["provider"]
    fn = EMBEDDINGS.get(provider)
    table = np.asarray(fn(split, dataset, cfg), dtype=np.float32)
    n_raw = max(split.classes.ids) + 1
    if table.ndim != 2 or table.shape[0] < n_raw:
        raise ZsbenchError(f"embedding table from provider {provider!r} has shape {table.shape}, but class list "
                           f"{split.classes.path.name} needs one row per raw label id ({n_raw} rows)")
    rows = table[list(split.eval_raw_ids)]
    if not np.isfinite(rows).all():
        bad = [n for n, r in zip(split.eval_names, rows) if not np.isfinite(r).all()]
        raise ZsbenchError(f"embedding provider {provider!r} has no vector for classes {bad}")
    if (cfg["normalize"] or getattr(fn, "default_normalize", "l2")) == "l2":
        rows = normalize_rows(rows)
    return rows.astype(np.float32)

