"""Settings chosen on `val` only, with the same number of trials for every method (issue 16).

A trials file lists, per method, the settings to try (each a list of `--set` overrides; `[]` is
the card as it stands). `run_trials` runs every (method, trial, seed) scored on the benchmark's
`val` part (`dataset.eval_part=val`, which it sets itself) and writes the trials table: the val
scores of each trial, its dead-mechanism warnings (runs/diagnostics.py) and, per method, the chosen
trial: the best mean val hIoU among the trials with no warning, or among all when every trial has
one (a setting whose mechanism is dead is not the method the card names; ties: fewer warnings,
then the first listed, i.e. the card's own when it is listed first). It never scores the test part, and it
refuses a file whose methods have different numbers of trials, whose trials touch the data
(`dataset.*`), or which sets the scored part or world other than through `world`. `common`
overrides apply to every trial (e.g. smaller settings in tests).

    # results/trials/<name>.yaml
    world: 0
    split: synthetic-9-3   # optional: the synthetic benchmark's default split when left out
    seeds: [0]
    common: []
    trials:
      spnet: [[], [train.lr=0.005]]
      cagnet-pi: [[], [finetune.lambdas.D_cls_fake_transfer=0.125]]

The chosen settings then go into the cards by hand, and the method READMEs list the trials.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from yaml import YAMLError

from zsseg_bench.catalog.yamlio import load_yaml
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.diagnostics import dead_mechanisms

__all__ = ["TrialPlan", "load_trials", "run_trials", "SCORES"]

SCORES = ("hIoU", "S-mIoU", "U-mIoU")


@dataclass
class TrialPlan:
    path: Path
    world: int
    seeds: list[int]
    trials: dict[str, list[list[str]]]  # method -> trials, each a list of --set overrides
    common: list[str]  # overrides of every trial
    split: str | None = None  # a synthetic split's name; None: the benchmark's default split


def load_trials(path: Path) -> TrialPlan:
    """The trials file at `path`, checked: equal trial counts, no data override."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except (OSError, YAMLError) as exc:
        raise ZsbenchError(f"{path}: cannot read the trials file ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("trials"), dict) or not raw["trials"]:
        raise ZsbenchError(f"{path}: expected a mapping with 'trials: {{method: [[override, ...], ...]}}'")
    unknown = set(raw) - {"world", "seeds", "common", "trials", "split"}
    if unknown:
        raise ZsbenchError(f"{path}: unknown key {sorted(unknown)[0]!r}; keys: world, split, seeds, common, trials")
    common = [str(o) for o in raw.get("common") or []]
    for override in common:
        if override.lstrip("+").split("=")[0] in ("dataset.eval_part", "dataset.world"):
            raise ZsbenchError(f"{path}: common: {override!r}; the part is always val and the world is 'world'")
    trials = {}
    for method, listed in raw["trials"].items():
        if not isinstance(listed, list) or not all(isinstance(t, list) for t in listed) or not listed:
            raise ZsbenchError(f"{path}: trials.{method}: expected a list of trials, each a list of key=value")
        trials[method] = [[str(o) for o in t] for t in listed]
        for override in (o for t in trials[method] for o in t):
            if override.lstrip("+").startswith("dataset."):
                raise ZsbenchError(f"{path}: trials.{method}: {override!r} sets the data; the world is the file's "
                                   f"'world' and the part is always val")
    counts = {m: len(t) for m, t in trials.items()}
    if len(set(counts.values())) != 1:
        raise ZsbenchError(f"{path}: every method needs the same number of trials; found "
                           + ", ".join(f"{m} {n}" for m, n in counts.items()))
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ZsbenchError(f"{path}: seeds: expected a list of integers, e.g. [0]")
    world = raw.get("world", 0)
    if not isinstance(world, int) or world < 0:
        raise ZsbenchError(f"{path}: world: expected a non-negative integer")
    split = raw.get("split")
    if split is not None:
        from zsseg_bench.runs.prepare import split_for

        try:
            split_for("synthetic", str(split))
        except ZsbenchError as exc:
            raise ZsbenchError(f"{path}: split: {exc}") from None
    return TrialPlan(path, world, seeds, trials, common, None if split is None else str(split))


def run_trials(plan: TrialPlan, out: Path, reporter=None, command: str = "") -> Path:
    """Run every trial on val; write <out>/trials.md and trials.csv; return the table's path.

    A folder that already holds a trials table gets a further round: the new trials are numbered
    after the earlier ones, and the table and the choice cover every round (so every method must
    end with the same number of trials in all)."""
    from zsseg_bench.runs.train import run_comparison

    out = Path(out)
    earlier = _earlier_rows(out)
    _check_round_counts(plan, earlier)
    rows = list(earlier)
    for method, trials in plan.trials.items():
        first = sum(r["method"] == method for r in earlier)
        for i, overrides in enumerate(trials, start=first):
            data = [f"dataset.world={plan.world}", "dataset.eval_part=val"]
            _, paths = run_comparison([method], split=plan.split, seeds=list(plan.seeds),
                                      overrides=plan.common + data + overrides,
                                      out=out / method / f"trial{i}", reporter=reporter, command=command)
            records = _records(paths)
            rows.append({"method": method, "trial": i, "overrides": " ".join(overrides) or "(card)",
                         **{k: float(np.mean([r["metrics"][k] for r in records])) for k in SCORES},
                         "warnings": _warnings(records), "runs": " ".join(str(p) for p in paths),
                         "file": plan.path.name})
    return write_table(rows, out, plan)


def _records(paths) -> list[dict]:
    """The run records (runs/records.py) of the runs at `paths`."""
    from zsseg_bench.runs.records import load_record

    try:
        return [load_record(p) for p in paths]
    except ZsbenchError as exc:  # trials.csv names its runs relative to where it was written
        raise ZsbenchError(f"{exc}; run 'zsbench trials' from the folder the trials table was written from") from None


def _warnings(records: list[dict]) -> int:
    """Dead-mechanism warnings of the runs' records, by the current rules (runs/diagnostics.py)."""
    return sum(len(dead_mechanisms(rec.get("method_facts"))) for rec in records)


def _earlier_rows(out: Path) -> list[dict]:
    """The rows of an earlier round's trials.csv in `out` (none when there is none); their warnings
    are counted again from the run records, so that every round is judged by the same rules."""
    path = out / "trials.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.pop("chosen", None)
        r["trial"], r["warnings"] = int(r["trial"]), _warnings(_records(r["runs"].split()))
        r["file"] = r.get("file") or "an earlier round"
        r.update({k: float(r[k]) for k in SCORES})
    return rows


def _check_round_counts(plan: TrialPlan, earlier: list[dict]) -> None:
    """A further round must leave every method with the same number of trials in all."""
    if not earlier:
        return
    before = {m: sum(r["method"] == m for r in earlier) for m in {r["method"] for r in earlier} | set(plan.trials)}
    totals = {m: n + len(plan.trials.get(m, [])) for m, n in before.items()}
    if len(set(totals.values())) != 1:
        raise ZsbenchError(f"{plan.path}: with the earlier round in this folder every method needs the same number "
                           "of trials in all; it would have " + ", ".join(f"{m} {n}" for m, n in sorted(totals.items())))


def chosen(rows: list[dict]) -> dict[str, int]:
    """method -> its trial with the best mean val hIoU among those without a dead-mechanism warning
    (among all when every trial has one; on a tie the fewer warnings, then the first listed; NaN
    counts as worst)."""
    best: dict[str, tuple] = {}
    for r in rows:
        warnings = r.get("warnings", 0)
        key = (warnings == 0, r["hIoU"] if r["hIoU"] == r["hIoU"] else -1.0, -warnings)
        if r["method"] not in best or key > best[r["method"]][0]:
            best[r["method"]] = (key, r["trial"])
    return {m: t for m, (_, t) in best.items()}


_COLUMNS = ("method", "trial", "overrides", *SCORES, "warnings", "runs", "file", "chosen")


def write_table(rows: list[dict], out: Path, plan: TrialPlan) -> Path:
    picks = chosen(rows)
    order = list(dict.fromkeys(r["method"] for r in rows))
    rows = sorted(rows, key=lambda r: (order.index(r["method"]), r["trial"]))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "trials.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "chosen": picks[r["method"]] == r["trial"]})
    files = ", ".join(dict.fromkeys(r["file"] for r in rows))
    where = f"{plan.split}, " if plan.split else ""
    lines = [f"# Trials on val ({where}world {plan.world}, seeds {', '.join(map(str, plan.seeds))}; {files})", "",
             "Scored on the benchmark's val part only. Chosen (marked): the best mean val hIoU among the trials "
             "without a dead-mechanism warning, or among all when every trial has one.", "",
             "| method | trial | overrides | " + " | ".join(f"val {k}" for k in SCORES) + " | warnings | chosen |",
             "| --- | --- | --- | " + " | ".join("---" for _ in SCORES) + " | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['trial']} | `{r['overrides']}` | "
                     + " | ".join(f"{r[k]:.4f}" for k in SCORES)
                     + f" | {r['warnings']} | {'yes' if picks[r['method']] == r['trial'] else ''} |")
    (out / "trials.md").write_text("\n".join(lines) + "\n")
    return out / "trials.md"
