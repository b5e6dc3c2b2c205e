"""Modern anchors (`results/published/anchors.csv`): later methods' numbers, shown beside the seed
rows for orientation and never compared with a run (`zsbench check` does not read them).

They are kept apart from the same-protocol published tables because they differ in ways that
change numbers: COCO-Stuff with 171 classes (156/15) instead of 182 (167/15), inductive or
transductive, and sometimes an average over several runs instead of one checkpoint. Each row
says which. Values are fractions (the source prints percentages with one decimal).
"""

from __future__ import annotations

from functools import lru_cache

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.paths import published_dir

__all__ = ["ANCHORS_FILE", "ANCHOR_COLUMNS", "anchors_frame", "check_anchors"]

ANCHORS_FILE = "anchors.csv"
ANCHOR_COLUMNS = ("method", "method_label", "venue", "dataset", "split_id", "n_classes", "n_seen", "n_unseen",
                  "setting", "runs", "S-mIoU", "U-mIoU", "hIoU", "hIoU_from", "source", "note")
SETTINGS = ("inductive", "transductive")
RUNS = ("single checkpoint", "average of runs", "not stated")
HIOU_FROM = ("printed", "recomputed from S-mIoU and U-mIoU")
_ROUNDING = 0.001  # one decimal in percent, on S, U and hIoU alike


@lru_cache(maxsize=2)
def _load(directory: str):
    from pathlib import Path

    import pandas as pd

    path = Path(directory) / ANCHORS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=list(ANCHOR_COLUMNS))
    frame = pd.read_csv(path, dtype={"note": str, "venue": str, "hIoU_from": str})
    missing = [c for c in ANCHOR_COLUMNS if c not in frame.columns]
    if missing:
        raise ZsbenchError(f"{path}: missing columns {missing}; see results/published/README.md")
    for col in ("note", "venue", "hIoU_from"):
        frame[col] = frame[col].fillna("")
    return frame


def anchors_frame(dataset: str | None = None):
    """The anchors (every dataset, or one), a pandas DataFrame with ANCHOR_COLUMNS."""
    frame = _load(str(published_dir()))
    return (frame if dataset is None else frame[frame["dataset"] == dataset]).reset_index(drop=True)


def check_anchors() -> list[str]:
    """Problems of anchors.csv, one line each naming the row and the field (for `zsbench validate`)."""
    where = f"results/published/{ANCHORS_FILE}"
    try:
        frame = anchors_frame()
    except (ZsbenchError, ValueError) as exc:
        return [str(exc)]
    problems = []
    for i, row in frame.iterrows():
        at = f"{where} row {i + 2} ({row['method']}, {row['split_id']}, {row['setting']})"
        problems += _check_row(row, at)
    return problems


def _check_row(row, at: str) -> list[str]:
    problems = []
    for field, allowed in (("setting", SETTINGS), ("runs", RUNS)):
        if row[field] not in allowed:
            problems.append(f"{at}: field '{field}': {row[field]!r} is not one of {allowed}")
    if row["n_seen"] + row["n_unseen"] != row["n_classes"]:
        problems.append(f"{at}: n_seen + n_unseen is not n_classes")
    values = {m: row[m] for m in ("S-mIoU", "U-mIoU", "hIoU") if row[m] == row[m]}
    if any(not 0 <= v <= 1 for v in values.values()):
        problems.append(f"{at}: metric values must be fractions in [0, 1]")
    if "hIoU" in values:
        if row["hIoU_from"] not in HIOU_FROM:
            problems.append(f"{at}: field 'hIoU_from': {row['hIoU_from']!r} is not one of {HIOU_FROM}")
        s, u = values.get("S-mIoU"), values.get("U-mIoU")
        agrees = s is not None and u is not None and abs(2 * s * u / (s + u) - values["hIoU"]) <= _ROUNDING
        if not agrees and "S-mIoU and U-mIoU give" not in row["note"]:
            problems.append(f"{at}: hIoU {values['hIoU']} does not follow from S-mIoU and U-mIoU; fix it or "
                            f"say so in 'note' (\"... S-mIoU and U-mIoU give X\")")
    return problems
