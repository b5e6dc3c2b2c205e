"""Seen/unseen splits as flat, versioned YAML files (`splits/<dataset>/<name>.yaml`).

A split names its dataset, a class list (`splits/classes/<name>.txt`: raw label id, TAB, class
name), the unseen classes by name, the excluded classes (ignored in training and evaluation),
how background counts, the ignore index and the training policy for unseen pixels. Seen
classes are the rest. Everything a run needs to know about "which classes are which" comes
from here, and the file's sha256 goes into every run record.

Evaluation index space: the classes that are not excluded, in raw-id order. Methods predict
over exactly these classes (seen and unseen), so every confusion matrix of a split is K x K
with K = len(split.eval_names).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from zsseg_bench.catalog.yamlio import YAMLError, load_yaml
from zsseg_bench.errors import ZsbenchError, did_you_mean
from zsseg_bench.paths import splits_dir

__all__ = [
    "Split",
    "ClassList",
    "load_split",
    "load_recorded_split",
    "load_class_list",
    "list_splits",
    "split_paths",
    "TRAIN_POLICIES",
    "BACKGROUND_RULES",
    "TASK_PROTOCOLS",
    "SPLIT_FORMAT",
]

SPLIT_FORMAT = 1
TRAIN_POLICIES = ("ignore_unseen_pixels", "drop_images_with_unseen")
BACKGROUND_RULES = ("excluded", "seen", "none")
# The task a split poses (its file's `protocol` field). gzs3: generalized zero-shot (seen + unseen
# scored together, hIoU); fss-zeroshot: SAZS/LSeg episodic binary masks; weak-shot: SimFormer
# (novel classes have image-level labels).
TASK_PROTOCOLS = ("gzs3", "fss-zeroshot", "weak-shot")
_REQUIRED = ("format", "name", "version", "dataset", "classes", "unseen", "excluded", "background",
             "ignore_index", "train_policy", "source")
_OPTIONAL = ("calibration_val", "protocol", "notes", "background_class", "episodes")
INVALID = -1  # LUT value for a raw label that is neither a class nor the ignore index


@dataclass(frozen=True)
class ClassList:
    """Raw label id -> class name for one label space."""

    name: str
    ids: tuple[int, ...]
    names: tuple[str, ...]
    path: Path

    def id_of(self, class_name: str) -> int:
        return self.ids[self.names.index(class_name)]


def load_class_list(name: str, base: Path | None = None, near: Path | None = None) -> ClassList:
    """Find `classes/<name>.txt` under `base` (default: splits/), or next to a split file
    given by path (`near`: its folder's or its parent folder's `classes/`).

    `name` is a bare file stem: a path (absolute, `../`, a sub-folder) could make a split file
    read, and an error message show, a file outside its class-list folders."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name) or ".." in name:
        raise ZsbenchError(f"class list {name!r}: must be the bare name of a file in a classes/ folder "
                           f"(letters, digits, '_', '-', '.', '+'; no path), e.g. voc12")
    roots = [base or splits_dir()]
    if near is not None:
        roots = [near.parent.parent, near.parent] + roots
    candidates = [r / "classes" / f"{name}.txt" for r in roots]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        known = sorted({p.stem for r in roots for p in (r / "classes").glob("*.txt")})
        raise ZsbenchError(f"class list {name!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})"
                           f"{did_you_mean(name, known)}")
    ids, names = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip().isdigit():
            raise ZsbenchError(f"{path}:{lineno}: expected 'id<TAB>name', got {line!r}")
        ids.append(int(parts[0]))
        names.append(parts[1].strip())
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ZsbenchError(f"{path}: duplicate class names {dup}")
    if len(set(ids)) != len(ids):
        raise ZsbenchError(f"{path}: duplicate label ids")
    return ClassList(name=name, ids=tuple(ids), names=tuple(names), path=path)


@dataclass(frozen=True)
class Split:
    name: str
    version: int
    dataset: str
    classes: ClassList
    unseen: tuple[str, ...]
    excluded: tuple[str, ...]
    background: str
    ignore_index: int
    train_policy: str
    source: dict
    path: Path
    sha256: str
    task_protocol: str = "gzs3"  # the file's `protocol` field, one of TASK_PROTOCOLS
    background_class: str = "background"
    calibration_val: tuple[str, ...] = ()
    notes: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- class spaces -------------------------------------------------------------------
    @cached_property
    def eval_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.classes.names if n not in self.excluded)

    @cached_property
    def eval_raw_ids(self) -> tuple[int, ...]:
        return tuple(self.classes.id_of(n) for n in self.eval_names)

    @property
    def num_classes(self) -> int:
        return len(self.eval_names)

    @cached_property
    def seen_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.eval_names if n not in self.unseen)

    @cached_property
    def seen_mask(self) -> np.ndarray:
        """Boolean [K] over the evaluation classes: True for seen."""
        return np.array([n not in self.unseen for n in self.eval_names], dtype=bool)

    @property
    def unseen_mask(self) -> np.ndarray:
        return ~self.seen_mask

    @cached_property
    def background_index(self) -> int | None:
        """Evaluation index of the background class, when it is one of the scored classes."""
        if self.background == "seen" and self.background_class in self.eval_names:
            return self.eval_names.index(self.background_class)
        return None

    def lut(self, *, train: bool, size: int | None = None) -> np.ndarray:
        """Raw label id -> evaluation index, as an int64 lookup table.

        Excluded classes and the ignore index map to `ignore_index`; with `train=True` unseen
        classes do too (the `ignore_unseen_pixels` policy; `drop_images_with_unseen` drops the
        images before this is applied, so it is the same table). Any other raw value maps to
        INVALID so that loaders can report labels outside the class list.
        """
        size = size or max(256, self.ignore_index + 1, max(self.classes.ids) + 1)
        table = np.full(size, INVALID, dtype=np.int64)
        table[self.ignore_index] = self.ignore_index
        for raw, name in zip(self.classes.ids, self.classes.names):
            if name in self.excluded or (train and name in self.unseen):
                table[raw] = self.ignore_index
            else:
                table[raw] = self.eval_names.index(name)
        return table

    def describe(self) -> dict:
        return {
            "split": self.name,
            "version": self.version,
            "dataset": self.dataset,
            "classes": self.classes.name,
            "n_seen": int(self.seen_mask.sum()),
            "n_unseen": int(self.unseen_mask.sum()),
            "background": self.background,
            "train_policy": self.train_policy,
            "protocol": self.task_protocol,
        }


def split_paths(base: Path | None = None) -> list[Path]:
    root = base or splits_dir()
    return sorted(p for p in root.glob("*/*.yaml") if p.parent.name != "classes")


def list_splits(base: Path | None = None) -> list[Split]:
    return [load_split(p) for p in split_paths(base)]


def load_split(name_or_path: str | Path, base: Path | None = None) -> Split:
    """Load and validate a split by name (searched under splits/) or by file path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        matches = [p for p in split_paths(base) if p.stem == str(name_or_path)]
        if not matches:
            names = [p.stem for p in split_paths(base)]
            raise ZsbenchError(f"unknown split {str(name_or_path)!r}{did_you_mean(str(name_or_path), names)}; "
                               f"run 'zsbench ls splits' to see them")
        path = matches[0]
    return _parse(path, base)


def load_recorded_split(info: dict) -> Split:
    """The split a run record names (its `split` section): by name from the catalogue, else from the
    split file it records (a split file outside splits/, given to `zsbench run --split FILE`)."""
    try:
        return load_split(info["name"])
    except ZsbenchError:
        recorded = info.get("file")
        if isinstance(recorded, str) and Path(recorded).is_file():
            return load_split(recorded)
        raise


def _fail(path: Path, fieldname: str, problem: str) -> ZsbenchError:
    return ZsbenchError(f"{path}: field '{fieldname}': {problem}")


def _read_fields(path: Path, text: bytes) -> dict:
    """The split file's mapping, with every required field present and no unknown one."""
    try:
        raw = load_yaml(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ZsbenchError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ZsbenchError(f"{path}: a split file must be a YAML mapping of fields")
    for key in _REQUIRED:
        if key not in raw:
            raise _fail(path, key, "missing; every split file needs " + ", ".join(_REQUIRED))
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(path, key, f"unknown field{did_you_mean(key, _REQUIRED + _OPTIONAL)}")
    if raw["format"] != SPLIT_FORMAT:
        raise _fail(path, "format", f"is {raw['format']!r}; this zsseg-bench reads format {SPLIT_FORMAT}")
    if raw["name"] != path.stem:
        raise _fail(path, "name", f"{raw['name']!r} must equal the file name {path.stem!r}")
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        raise _fail(path, "version", "must be a positive integer (bump it on any change that alters numbers)")
    for key in ("dataset", "classes"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise _fail(path, key, "must be a non-empty string")
    return raw


def _class_name_lists(path: Path, raw: dict, classes: ClassList) -> dict[str, tuple[str, ...]]:
    """`unseen`, `excluded` and `calibration_val`: lists of distinct class names of `classes`, disjoint."""
    lists = {}
    for key in ("unseen", "excluded", "calibration_val"):
        value = raw.get(key, [])
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(path, key, "must be a list of class names")
        for v in value:
            if v not in classes.names:
                raise _fail(path, key, f"unknown class {v!r}{did_you_mean(v, classes.names)} "
                                       f"(class list {classes.path.name})")
        if len(set(value)) != len(value):
            raise _fail(path, key, "lists a class twice")
        lists[key] = tuple(value)
    if set(lists["unseen"]) & set(lists["excluded"]):
        both = sorted(set(lists["unseen"]) & set(lists["excluded"]))
        raise _fail(path, "unseen", f"{both} also in 'excluded'; a class is seen, unseen or excluded")
    if set(lists["calibration_val"]) & (set(lists["unseen"]) | set(lists["excluded"])):
        raise _fail(path, "calibration_val", "must name seen classes only")
    return lists


def _check_class_roles(path: Path, raw: dict, classes: ClassList, lists: dict, task_protocol: str) -> str:
    """Enough seen and unseen classes for the task protocol, and a background rule the lists agree
    with; returns the background class's name."""
    if not lists["unseen"] and task_protocol == "gzs3":
        raise _fail(path, "unseen", "is empty; a zero-shot split needs at least one unseen class")
    seen = [n for n in classes.names if n not in lists["unseen"] and n not in lists["excluded"]]
    if not seen and task_protocol != "fss-zeroshot":
        raise _fail(path, "unseen", "leaves no seen class")
    background = raw["background"]
    if background not in BACKGROUND_RULES:
        raise _fail(path, "background", f"{background!r} is not one of {BACKGROUND_RULES}")
    bg_class = raw.get("background_class", "background")
    if background != "none":
        if bg_class not in classes.names:
            raise _fail(path, "background", f"is {background!r} but the class list has no {bg_class!r}")
        if background == "excluded" and bg_class not in lists["excluded"]:
            raise _fail(path, "background", f"is 'excluded' but {bg_class!r} is not in 'excluded'")
        if background == "seen" and bg_class not in seen:
            raise _fail(path, "background", f"is 'seen' but {bg_class!r} is unseen or excluded")
    return bg_class


def _check_policies(path: Path, raw: dict, classes: ClassList, task_protocol: str) -> None:
    """ignore_index, train_policy, protocol and source."""
    ignore = raw["ignore_index"]
    if not isinstance(ignore, int) or isinstance(ignore, bool) or not 0 <= ignore < 65536:
        raise _fail(path, "ignore_index", "must be an integer in [0, 65535]")
    if ignore in classes.ids:
        raise _fail(path, "ignore_index", f"{ignore} is also a class id in {classes.path.name}")
    if raw["train_policy"] not in TRAIN_POLICIES:
        raise _fail(path, "train_policy", f"{raw['train_policy']!r} is not one of {TRAIN_POLICIES}")
    if task_protocol not in TASK_PROTOCOLS:
        raise _fail(path, "protocol", f"{task_protocol!r} is not one of {TASK_PROTOCOLS}")
    if "episodes" in raw:
        from zsseg_bench.protocols.episodes import check_episode_rule

        problem = check_episode_rule(raw["episodes"]) if task_protocol == "fss-zeroshot" else "only for fss-zeroshot"
        if problem:
            raise _fail(path, "episodes", problem)
    source = raw["source"]
    if not isinstance(source, dict) or not source.get("paper"):
        raise _fail(path, "source", "must be a mapping with at least 'paper' (and usually 'table')")


def _parse(path: Path, base: Path | None) -> Split:
    text = path.read_bytes()
    raw = _read_fields(path, text)
    try:
        classes = load_class_list(raw["classes"], base, near=path)
    except ZsbenchError as exc:
        raise _fail(path, "classes", str(exc)) from None
    lists = _class_name_lists(path, raw, classes)
    task_protocol = raw.get("protocol", "gzs3")
    bg_class = _check_class_roles(path, raw, classes, lists, task_protocol)
    _check_policies(path, raw, classes, task_protocol)
    return Split(
        name=raw["name"], version=raw["version"], dataset=raw["dataset"], classes=classes,
        unseen=lists["unseen"], excluded=lists["excluded"], background=raw["background"],
        ignore_index=raw["ignore_index"], train_policy=raw["train_policy"], source=raw["source"], path=path.resolve(),
        sha256=hashlib.sha256(text).hexdigest(), task_protocol=task_protocol, background_class=bg_class,
        calibration_val=lists["calibration_val"], notes=str(raw.get("notes", "")), raw=raw,
    )
