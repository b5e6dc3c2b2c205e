"""Published numbers (`results/published/*.csv`) as one pandas DataFrame, and lookups.

Sources are kept side by side; when a run is compared with "the" published row and no source
is named, the first source in `SOURCE_PRIORITY` that has a row for the (method, dataset,
split) is used: the original CaGNet README for the rows it has, then the v2 README, then the
thesis slides. Pass `source=` to choose.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from zsseg_bench.errors import ZsbenchError, did_you_mean
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.paths import published_dir

__all__ = ["published_frame", "lookup", "SOURCE_PRIORITY", "COLUMNS"]

SOURCE_PRIORITY = ("cagnet-readme", "cagnetv2-readme", "thesis-slides", "sazs-readme")
COLUMNS = ("source", "table", "dataset", "split", "method", "method_label", "protocol", *METRIC_NAMES, "note")


@lru_cache(maxsize=4)
def _load(directory: str) -> pd.DataFrame:
    from pathlib import Path

    from zsseg_bench.catalog.anchors import ANCHORS_FILE

    frames = []
    for path in sorted(Path(directory).glob("*.csv")):
        if path.name == ANCHORS_FILE:  # other splits and settings: never compared (anchors.py)
            continue
        frame = pd.read_csv(path, dtype={"note": str})
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ZsbenchError(f"{path}: missing columns {missing}; see results/published/README.md")
        frame["file"] = path.name
        frames.append(frame)
    if not frames:
        raise ZsbenchError(f"no published tables found in {directory}")
    out = pd.concat(frames, ignore_index=True)
    for m in METRIC_NAMES:
        out[m] = pd.to_numeric(out[m], errors="raise").astype(float)
    out["note"] = out["note"].fillna("")
    return out


def published_frame(dataset: str | None = None, source: str | None = None, method: str | None = None) -> pd.DataFrame:
    frame = _load(str(published_dir()))
    for col, value in (("dataset", dataset), ("source", source), ("method", method)):
        if value is not None:
            known = sorted(frame[col].unique())
            if value not in known:
                raise ZsbenchError(f"no published rows with {col} {value!r}{did_you_mean(value, known)}; "
                                   f"known: {', '.join(known)}")
            frame = frame[frame[col] == value]
    return frame.reset_index(drop=True)


def lookup(method: str, dataset: str, split: str, source: str | None = None) -> pd.Series | None:
    """The published row for (method, dataset, split), from `source` or the first by priority."""
    frame = _load(str(published_dir()))
    rows = frame[(frame.method == method) & (frame.dataset == dataset) & (frame.split == split)]
    if source is not None:
        if source not in set(frame.source):
            raise ZsbenchError(f"unknown source {source!r}{did_you_mean(source, set(frame.source))}")
        rows = rows[rows.source == source]
    if rows.empty:
        return None
    order = {s: i for i, s in enumerate(SOURCE_PRIORITY)}
    rows = rows.assign(_rank=rows.source.map(lambda s: order.get(s, len(order)))).sort_values("_rank", kind="stable")
    return rows.iloc[0].drop("_rank")
