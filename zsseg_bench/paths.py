"""Where the data folders are.

`methods/`, `splits/` and `results/published/` sit at the top of the repository because they
are data, not code. A checkout (or an editable install) reads them there; a wheel carries a
copy under `zsseg_bench/_data/` (see `pyproject.toml`). `ZSBENCH_ROOT` overrides both.
Run records go to `./results/runs` (relative to the working directory) unless `--out` says
otherwise, so a clone writes next to the committed results.
`ZSBENCH_CARDS` adds folders of method cards (`<family>/<name>.yaml`, like `methods/`) kept
outside the data root, e.g. the card of a plugin method (docs/adding.md).
Computed files (class presence, the shared initialisation) go to `~/.cache/zsseg-bench`, or to
`$ZSBENCH_CACHE` when it is set.
"""

from __future__ import annotations

import os
from pathlib import Path

from zsseg_bench.errors import ZsbenchError

__all__ = ["data_root", "methods_dir", "splits_dir", "published_dir", "expected_dir", "default_runs_dir", "repo_root",
           "extra_card_dirs", "cache_dir"]

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


def extra_card_dirs() -> list[Path]:
    """The folders named in ZSBENCH_CARDS (separated like PATH), each of which must exist."""
    dirs = [Path(p).expanduser() for p in os.environ.get("ZSBENCH_CARDS", "").split(os.pathsep) if p.strip()]
    for d in dirs:
        if not d.is_dir():
            raise ZsbenchError(f"ZSBENCH_CARDS: {d} is not a folder; name folders that hold <family>/<card>.yaml")
    return dirs


def splits_dir() -> Path:
    return data_root() / "splits"


def published_dir() -> Path:
    return data_root() / "results" / "published"


def expected_dir() -> Path:
    """The synthetic benchmark's expected results (catalog/expected.py)."""
    return data_root() / "results" / "expected"


def default_runs_dir() -> Path:
    return Path(os.environ.get("ZSBENCH_RUNS", "results/runs"))


def cache_dir() -> Path:
    """The user's cache folder for files computed once (`ZSBENCH_CACHE` moves it)."""
    return Path(os.environ.get("ZSBENCH_CACHE") or Path.home() / ".cache" / "zsseg-bench")
