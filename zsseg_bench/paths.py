"""Where the data folders are.

`methods/`, `splits/` and `results/published/` sit at the top of the repository because they
are data, not code. A checkout (or an editable install) reads them there; a wheel carries a
copy under `zsseg_bench/_data/` (see `pyproject.toml`). `ZSBENCH_ROOT` overrides both.
Run records go to `./results/runs` (relative to the working directory) unless `--out` says
otherwise, so a clone writes next to the committed results.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "methods_dir", "splits_dir", "published_dir", "default_runs_dir", "repo_root"]

_PACKAGE = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The checkout this package runs from, or None for an installed wheel."""
    candidate = _PACKAGE.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "splits").is_dir():
        return candidate
    return None


def data_root() -> Path:
    env = os.environ.get("ZSBENCH_ROOT")
    if env:
        return Path(env)
    root = repo_root()
    return root if root is not None else _PACKAGE / "_data"


def methods_dir() -> Path:
    return data_root() / "methods"


def splits_dir() -> Path:
    return data_root() / "splits"


def published_dir() -> Path:
    return data_root() / "results" / "published"


def default_runs_dir() -> Path:
    return Path(os.environ.get("ZSBENCH_RUNS", "results/runs"))
