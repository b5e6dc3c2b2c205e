"""The one place a number becomes text, for tables, reports, figures' labels and printouts alike.

Metric values are fractions in [0, 1] (as in the source papers' tables) until they are shown;
`metric_text` shows them with a fixed number of decimals (trailing zeros kept), as fractions or
as percentages. tables.py re-exports these names."""

from __future__ import annotations

import numpy as np

__all__ = ["MAIN_METRICS", "KEY_METRICS", "MISSING", "DECIMALS", "FRACTION", "DELTA", "is_missing", "format_value",
           "format_cell", "metric_text"]

MAIN_METRICS = ("hIoU", "mIoU", "S-mIoU", "U-mIoU")  # the ones a short summary shows
KEY_METRICS = (*MAIN_METRICS, "PA", "MA")  # the first printed table; the others follow in a second one

MISSING = "–"  # a missing number (None, NaN) in every table and printout
DECIMALS = 4  # metric fractions, as the source papers' tables print them
FRACTION = f".{DECIMALS}f"
DELTA = f"+.{DECIMALS}f"  # ours - published, always signed


def is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and bool(np.isnan(value)))


def format_value(value, spec: str = FRACTION) -> str:
    """A number as text: `spec` is a format spec (FRACTION for metrics, DELTA for differences, '.1%'
    for shares, '.3g' for timings); None and NaN read as MISSING."""
    return MISSING if is_missing(value) else format(value, spec)


def format_cell(value) -> str:
    """A table cell of any kind (numbers already formatted, or shown as they are); missing as MISSING."""
    return MISSING if is_missing(value) else str(value)


def metric_text(value, decimals: int = DECIMALS, percent: bool = False, signed: bool = False) -> str:
    """A metric (a fraction) with `decimals` fixed decimals, as a percentage (x 100, no % sign) with
    `percent`; `signed` for differences."""
    if is_missing(value):
        return MISSING
    return format(float(value) * (100.0 if percent else 1.0), f"{'+' if signed else ''}.{decimals}f")
