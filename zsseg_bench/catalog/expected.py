"""Expected results of the synthetic benchmark (`results/expected/*.yaml`): what `zsbench check`
compares a synthetic run with, as it compares a real-data run with the published rows.

One file per (dataset, dataset version, world, split): the default run's rows, each method's
mean of a metric over at least `MIN_SEEDS` seeds and a tolerance, with the command and batch they
came from. `zsbench expected BATCH` writes it from a batch of finished runs (`build_expected`):

    mean      = the mean over the runs' seeds
    tolerance = max(3 x the sample standard deviation over seeds (ddof 1), TOLERANCE_FLOOR)

Three standard deviations cover a further seed of the same code with high probability; the floor
(two IoU points) keeps a method whose seeds happened to agree closely from failing on the noise a
fourth seed brings. A run is compared with the row of its method only when it ran the default
configuration (no --set overrides); the rows are for exactly that run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from zsseg_bench.catalog.yamlio import YAMLError, load_yaml
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.paths import expected_dir

__all__ = ["EXPECTED_METRICS", "MIN_SEEDS", "TOLERANCE_FLOOR", "FORMAT", "run_identity",
           "load_expected", "expected_for", "build_expected", "tolerance_of", "validate_expected_file",
           "expected_problems", "is_expected_file", "default_file_name", "write_expected"]

FORMAT = 1
EXPECTED_METRICS = ("hIoU", "mIoU", "S-mIoU", "U-mIoU")
MIN_SEEDS = 3
TOLERANCE_FLOOR = 0.02
_IDENTITY = ("dataset", "version", "world", "split")
_ROW_KEYS = ("method", "metric", "mean", "tolerance", "std", "n_seeds", "seeds")


def run_identity(rec: dict) -> dict:
    """(dataset, version, world, split) of a run record. The world is the benchmark seed
    (`dataset.world`, or the v1 option `seed`), 0 when the options name neither."""
    ds = rec.get("dataset") or {}
    options = ds.get("options") or {}
    world = options.get("world", options.get("seed", 0))
    return {"dataset": ds.get("name"), "version": str(ds.get("version", "1")), "world": int(world),
            "split": (rec.get("split") or {}).get("name")}


def tolerance_of(values) -> tuple[float, float, float]:
    """(mean, tolerance, std) of one metric over seeds, by the rule in the module docstring."""
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), max(3.0 * std, TOLERANCE_FLOOR), std


def _fail(path, key: str, what: str) -> ZsbenchError:
    return ZsbenchError(f"{path}: {key}: {what}; see results/expected/README.md")


def _check_row(path, i: int, row) -> None:
    where = f"rows[{i}]"
    if not isinstance(row, dict) or set(row) != set(_ROW_KEYS):
        raise _fail(path, where, f"needs exactly the keys {', '.join(_ROW_KEYS)}")
    if row["metric"] not in METRIC_NAMES:
        raise _fail(path, f"{where}.metric", f"{row['metric']!r} is not a metric ({', '.join(METRIC_NAMES)})")
    for key in ("mean", "tolerance", "std"):
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise _fail(path, f"{where}.{key}", f"{value!r} is not a finite number >= 0")
    if row["tolerance"] <= 0:
        raise _fail(path, f"{where}.tolerance", "must be > 0")
    seeds = row["seeds"]
    if not isinstance(seeds, list) or len(set(seeds)) != len(seeds) or row["n_seeds"] != len(seeds):
        raise _fail(path, f"{where}.seeds", "must list n_seeds distinct seeds")
    if len(seeds) < MIN_SEEDS:
        raise _fail(path, f"{where}.n_seeds", f"{len(seeds)} seeds; expected rows need at least {MIN_SEEDS}")


def validate_expected_file(path: Path) -> dict:
    """The file's content, checked; one ZsbenchError line naming the file and key otherwise."""
    try:
        data = load_yaml(Path(path).read_text())
    except (OSError, YAMLError) as exc:
        raise ZsbenchError(f"{path}: unreadable expected-results file ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(path, "format", f"must be {FORMAT}")
    for key in (*_IDENTITY, "source", "rule", "rows"):
        if key not in data:
            raise _fail(path, key, "missing")
    if not isinstance(data["world"], int) or isinstance(data["world"], bool) or data["world"] < 0:
        raise _fail(path, "world", f"{data['world']!r} is not an integer >= 0")
    if not isinstance(data["rows"], list) or not data["rows"]:
        raise _fail(path, "rows", "must be a non-empty list")
    seen = set()
    for i, row in enumerate(data["rows"]):
        _check_row(path, i, row)
        key = (row["method"], row["metric"])
        if key in seen:
            raise _fail(path, f"rows[{i}]", f"a second row for method {key[0]!r}, metric {key[1]!r}")
        seen.add(key)
    data["version"] = str(data["version"])
    return data


def load_expected(directory: Path | None = None) -> list[tuple[Path, dict]]:
    """Every expected-results file, checked; two files for one identity are an error."""
    directory = Path(directory) if directory is not None else expected_dir()
    out, owners = [], {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        data = validate_expected_file(path)
        ident = tuple(data[k] for k in _IDENTITY)
        if ident in owners:
            raise ZsbenchError(f"{path}: rows for {dict(zip(_IDENTITY, ident))} are already in {owners[ident].name}")
        owners[ident] = path
        out.append((path, data))
    return out


def expected_for(rec: dict, directory: Path | None = None) -> tuple[str, dict[str, dict]] | None:
    """(file name, metric -> row) of the run's method and identity; None where no file has them.
    A run with --set overrides ran another configuration: it has no expected row."""
    ident = run_identity(rec)
    for path, data in load_expected(directory):
        if all(data[k] == ident[k] for k in _IDENTITY):
            rows = {r["metric"]: r for r in data["rows"] if r["method"] == rec.get("method")}
            if rows and rec.get("overrides"):
                raise ZsbenchError(f"{rec.get('path')}: ran with --set {' '.join(rec['overrides'])}; the expected "
                                   f"rows in {path.name} are for the default configuration")
            return (path.name, rows) if rows else None
    return None


def build_expected(records: list[dict], metrics=EXPECTED_METRICS) -> dict:
    """The expected-results file for a batch of finished runs (run.json contents with metrics)."""
    if not records:
        raise ZsbenchError("no finished runs to build expected results from")
    idents = {tuple(run_identity(r).values()) for r in records}
    if len(idents) != 1:
        raise ZsbenchError(f"the runs mix datasets, versions, worlds or splits: {sorted(idents)}; pass one batch")
    for rec in records:
        if rec.get("status") != "ok" or not rec.get("metrics"):
            raise ZsbenchError(f"{rec.get('path')}: status {rec.get('status')!r}; expected rows need finished runs")
        if rec.get("overrides"):
            raise ZsbenchError(f"{rec.get('path')}: ran with --set {' '.join(rec['overrides'])}; expected rows are "
                               f"for the default configuration")
    rows = []
    for method in sorted({r["method"] for r in records}):
        runs = sorted((r for r in records if r["method"] == method), key=lambda r: r["seed"])
        seeds = [r["seed"] for r in runs]
        if len(set(seeds)) != len(seeds) or len(seeds) < MIN_SEEDS:
            raise ZsbenchError(f"method {method}: seeds {seeds}; expected rows need at least {MIN_SEEDS} distinct "
                               f"seeds (zsbench run --seeds 0,1,2)")
        for metric in metrics:
            mean, tol, std = tolerance_of([r["metrics"][metric] for r in runs])
            rows.append({"method": method, "metric": metric, "mean": round(mean, 6), "tolerance": round(tol, 6),
                         "std": round(std, 6), "n_seeds": len(seeds), "seeds": list(seeds)})
    first = records[0]
    git = (first.get("environment") or {}).get("git") or {}
    return {"format": FORMAT, **run_identity(first),
            "source": {"command": first.get("command"), "batch": str(Path(first["path"]).parent),
                       "commit": git.get("commit"), "dirty": git.get("dirty")},
            "rule": f"mean over seeds; tolerance = max(3 x sample std (ddof 1), {TOLERANCE_FLOOR})",
            "rows": rows}


def is_expected_file(path: Path) -> bool:
    return Path(path).parent.name == "expected" and Path(path).suffix == ".yaml"


def _named(path, key: str, load, name: str) -> None:
    """`load(name)`, its error told as this file's key."""
    try:
        load(name)
    except ZsbenchError as exc:
        raise _fail(path, key, str(exc)) from None


def expected_problems(paths=None) -> tuple[int, list[str]]:
    """(files checked, problems) of the expected-results files (default: all of results/expected/):
    each file's form, and that its split and every row's method card exist."""
    from zsseg_bench.catalog.cards import load_card
    from zsseg_bench.catalog.splits import load_split

    paths = sorted(expected_dir().glob("*.yaml")) if paths is None and expected_dir().is_dir() else list(paths or [])
    problems = []
    for path in paths:
        try:
            data = validate_expected_file(path)
            _named(path, "split", load_split, data["split"])
            for i, row in enumerate(data["rows"]):
                _named(path, f"rows[{i}].method", load_card, row["method"])
        except ZsbenchError as exc:
            problems.append(str(exc))
    if not problems and len(paths) > 1:
        try:
            load_expected()
        except ZsbenchError as exc:
            problems.append(str(exc))
    return len(paths), problems


def default_file_name(data: dict) -> str:
    """<dataset>-v<version>-w<world>__<split>.yaml"""
    return f"{data['dataset']}-v{data['version']}-w{data['world']}__{data['split']}.yaml"


def write_expected(records: list[dict], out: Path | None = None, force: bool = False) -> Path:
    """Build the expected-results file of `records` and write it (default: results/expected/<name>);
    an existing file is replaced only with `force`. Returns the path."""
    import yaml

    data = build_expected(records)
    path = Path(out) if out is not None else expected_dir() / default_file_name(data)
    if path.exists() and not force:
        raise ZsbenchError(f"{path}: exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("# Written by zsbench expected; the rule and the runs it came from are in the file.\n"
                   + yaml.safe_dump(data, sort_keys=False, width=110))
    tmp.replace(path)
    validate_expected_file(path)
    return path
