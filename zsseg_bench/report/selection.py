"""Which runs one table may pool: never silently two runs of the same (method, split, seed, world)
or runs of different code.

A mean ± std over seeds is only a statement about one piece of code if every row is a different
seed of it. `select_runs` refuses a set of runs with duplicates (the same run repeated in two
batches, a superseded batch) or with several git commits, unless told how to pick: `latest`
keeps the newest run of each key, `pool` keeps them all; either way it says what it did.
"""

from __future__ import annotations

import pandas as pd

from zsseg_bench.errors import ZsbenchError

__all__ = ["RUN_KEY", "world_of", "select_runs"]

RUN_KEY = ["method", "dataset", "data", "split", "seed", "world"]  # data: version/world label (tables.py)


def world_of(rec: dict) -> int:
    """The generated world of a synthetic run (dataset.world; 0 when the record has none)."""
    dataset = rec.get("dataset") if isinstance(rec.get("dataset"), dict) else {}
    options = dataset.get("options") if isinstance(dataset.get("options"), dict) else {}
    world = dataset.get("world", options.get("world", 0))
    return world if isinstance(world, int) else 0


def _commits(frame: pd.DataFrame) -> list[str]:
    return sorted({str(c)[:10] if c else "unknown" for c in frame["commit"]})


def select_runs(frame: pd.DataFrame, latest: bool = False, pool: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """(the runs to tabulate, notes saying what was dropped or pooled); refuses ambiguity."""
    if frame.empty:
        return frame, []
    notes = []
    dup = frame[frame.duplicated(RUN_KEY, keep=False)]
    if not dup.empty and not (latest or pool):
        first = dup.iloc[0]
        same = frame[(frame[RUN_KEY] == first[RUN_KEY]).all(axis=1)]
        raise ZsbenchError(f"{len(same)} runs of {first['method']} on {first['split']} seed {first['seed']} world "
                           f"{first['world']} ({', '.join(same['path'])}); a table pools one run per seed: "
                           f"pass --latest to keep the newest of each, or --pool to average them all")
    if latest and not dup.empty:
        keep = frame.sort_values("start", kind="stable").drop_duplicates(RUN_KEY, keep="last")
        dropped = frame.loc[~frame.index.isin(keep.index), "run_id"]
        notes.append(f"--latest: kept the newest run of each (method, split, seed, world); dropped "
                     f"{len(dropped)}: {', '.join(dropped)}")
        frame = frame.loc[frame.index.isin(keep.index)]
    elif pool and not dup.empty:
        notes.append(f"--pool: {len(dup)} runs share a (method, split, seed, world) and are averaged together: "
                     f"{', '.join(dup['run_id'])}")
    commits = _commits(frame)
    if len(commits) > 1:
        if not (latest or pool):
            raise ZsbenchError(f"the runs come from {len(commits)} commits ({', '.join(commits)}); tabulate one "
                               f"batch, or pass --pool to average across code versions (or --latest)")
        notes.append(f"runs from {len(commits)} commits pooled: {', '.join(commits)}")
    return frame, notes
