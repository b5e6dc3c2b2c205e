"""Settings chosen on `val` only, with the same number of trials for every method (issue 16).

A trials file lists, per method, the settings to try (each a list of `--set` overrides; `[]` is
the card as it stands). `run_trials` runs every (method, trial, seed) scored on the benchmark's
`val` part (`dataset.eval_part=val`, which it sets itself) and writes the trials table: the val
scores of each trial, its dead-mechanism warnings (runs/diagnostics.py) and, per method, the chosen
trial: the best mean val hIoU among the trials with no warning, or among all when every trial has
one (a setting whose mechanism is dead is not the method the card names; ties: the first listed,
i.e. the card's own when it is listed first). It never scores the test part, and it
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
import json
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
    """Run every trial on val; write <out>/trials.md and trials.csv; return the table's path."""
    from zsseg_bench.runs.train import run_comparison

    out = Path(out)
    rows = []
    for method, trials in plan.trials.items():
        for i, overrides in enumerate(trials):
            data = [f"dataset.world={plan.world}", "dataset.eval_part=val"]
            _, paths = run_comparison([method], split=plan.split, seeds=list(plan.seeds),
                                      overrides=plan.common + data + overrides,
                                      out=out / method / f"trial{i}", reporter=reporter, command=command)
            scores = [json.loads((p / "metrics.json").read_text()) for p in paths]
            warnings = [w for p in paths for w in dead_mechanisms(json.loads((p / "run.json").read_text())
                                                                 .get("method_facts"))]
            rows.append({"method": method, "trial": i, "overrides": " ".join(overrides) or "(card)",
                         **{k: float(np.mean([s[k] for s in scores])) for k in SCORES},
                         "warnings": len(warnings), "runs": " ".join(str(p) for p in paths)})
    return write_table(rows, out, plan)


def chosen(rows: list[dict]) -> dict[str, int]:
    """method -> its trial with the best mean val hIoU among those without a dead-mechanism warning
    (among all when every trial has one; the first listed on a tie; NaN counts as worst)."""
    best: dict[str, tuple[bool, float, int]] = {}
    for r in rows:
        key = (r.get("warnings", 0) == 0, r["hIoU"] if r["hIoU"] == r["hIoU"] else -1.0)
        if r["method"] not in best or key > best[r["method"]][:2]:
            best[r["method"]] = (*key, r["trial"])
    return {m: t for m, (_, _, t) in best.items()}


def write_table(rows: list[dict], out: Path, plan: TrialPlan) -> Path:
    picks = chosen(rows)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "trials.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "chosen"])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "chosen": picks[r["method"]] == r["trial"]})
    where = f"{plan.split}, " if plan.split else ""
    lines = [f"# Trials on val ({where}world {plan.world}, seeds {', '.join(map(str, plan.seeds))}; {plan.path.name})", "",
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
