"""One run preparation: a request becomes a prepared run, everything checked before any folder exists.

A request names a method card, a dataset, a split (default: the dataset's), a seed, `--set`
overrides, `--init` weights, a device and a data root, or carries the stored config of a run
(resuming, predicting). `prepare_run` turns it into the resolved config, the split, the
datasets, the class embeddings and class space, the method built with its init weights (on
the device, engine options applied; `backbone.init: shared` resolved to its hash with the config
and pretrained, once and cached, just before the method is built), the engine options, the protocol flags and the training
images after the split's policy. A bad card, key, split, dataset, device, embedding table,
weight file or data setting is one error line here, so the commands that call it (`zsbench
run`, `eval`, `predict`, `bench`) leave nothing behind.

Those that need less say so with flags (no datasets, no training images, no method, their own
embeddings); the steps themselves exist once, here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from zsseg_bench.catalog.cards import Card, apply_overrides, load_card, resolve_config
from zsseg_bench.catalog.splits import Split, load_split
from zsseg_bench.catalog.validate import validate_config
from zsseg_bench.datasets import DATASETS, build_dataset, dataset_info, default_split, record_options, recorded_options
from zsseg_bench.datasets.presence import class_presence
from zsseg_bench.datasets.weak_shot import image_level_labels
from zsseg_bench.embeddings.base import split_embeddings
from zsseg_bench.engine.context import RunContext, check_data_config
from zsseg_bench.engine.distributed import broadcast_module
from zsseg_bench.engine.monitor import check_tensorboard
from zsseg_bench.engine.options import EngineOptions, prepare_method
from zsseg_bench.engine.resume import ResumePoint
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS, ClassSpace
from zsseg_bench.methods.base import Method
from zsseg_bench.pretrain.shared import ensure_shared_init, resolve_shared_init
from zsseg_bench.runs.records import load_record

__all__ = ["RunRequest", "RunData", "PreparedRun", "prepare_run", "resolved_config", "split_for", "resolve_device",
           "class_space", "train_indices", "hold_out", "build_method", "stored_config"]


@dataclass
class RunRequest:
    method: str
    dataset: str = "synthetic"
    split: str | None = None
    seed: int = 0
    device: str = "cpu"
    data_root: str | None = None
    overrides: list[str] = field(default_factory=list)
    out: Path = Path("results/runs")
    command: str = ""
    init: str | None = None  # --init PATH: backbone weights (backbone.init)
    config: dict | None = None  # a resolved config used as is (resuming, predicting)
    resume: ResumePoint | None = None
    resume_overrides: list[str] = field(default_factory=list)


@dataclass
class RunData:
    """The datasets of a run and how they were built (run.json's `dataset` section)."""

    options: dict  # the dataset options the sets were built with
    root: str | None
    train: torch.utils.data.Dataset
    test: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None = None  # the val part, where the dataset has one (diagnostics)


@dataclass
class PreparedRun:
    card: Card
    cfg: dict  # the resolved config, as it is recorded
    split: Split
    seed: int
    device: torch.device
    options: EngineOptions
    classes: ClassSpace  # on the device
    data: RunData | None = None
    method: Method | None = None
    flags: dict = field(default_factory=dict)  # the method's protocol flags
    train_indices: np.ndarray | None = None  # training images after the split's policy
    heldout_indices: np.ndarray | None = None  # engine.heldout_images of them, kept out of training
    init_report: dict | None = None  # what --init / backbone.init loaded
    image_labels: np.ndarray | None = None  # weak-shot splits: class presence per training image

    def context(self, **kwargs) -> RunContext:
        """The run context for this run; kwargs: reporter, log_path, run_id."""
        return RunContext(split=self.split, train_set=self.data.train if self.data is not None else None,
                          device=self.device, seed=self.seed, cfg=self.cfg, train_indices=self.train_indices,
                          heldout_indices=self.heldout_indices,
                          pass_unseen_labels=bool(self.flags.get("uses_unseen_labels", False)),
                          val_set=self.data.val if self.data is not None else None,  # built only with diagnostics on
                          image_labels=self.image_labels, options=self.options, **kwargs)


def prepare_run(req: RunRequest, *, data: bool = True, training: bool = True, build: bool = True,
                embeddings: Callable[[Split], np.ndarray] | None = None, impl: str | None = None) -> PreparedRun:
    """Check and prepare the run `req` describes, before any folder exists.

    data: build the training and test sets (and check the data settings against them).
    training: also find the training images after the split's policy (needs `data`).
    build: build the method (seeded by the request's seed, on the device, `--init` loaded).
    embeddings: class vectors of the split's evaluation classes instead of the configured provider.
    impl: the implementation to build instead of the card's (a checkpoint's own).
    """
    if training and not data:
        raise ValueError("prepare_run: training indices need the datasets (data=True)")
    card = load_card(req.method)
    cfg = _config(req, card)
    options = EngineOptions.from_cfg(cfg)
    if options.tensorboard:  # before any folder exists
        check_tensorboard()
    implementation = IMPLEMENTATIONS.get(impl or card.impl)
    split = split_for(req.dataset, req.split)
    _check_protocol(card, implementation, split)
    device = resolve_device(req.device)
    run_data = _datasets(req, cfg, split) if data else None
    if embeddings is not None:
        vectors = embeddings(split)
    else:
        vectors = split_embeddings(split, _embedding_source(req, cfg, split, run_data), cfg["embeddings"])
    if run_data is not None:
        check_data_config(cfg, split, run_data.train)
    prepared = PreparedRun(card=card, cfg=cfg, split=split, seed=req.seed, device=device, options=options,
                           classes=class_space(split, vectors).to(device), data=run_data)
    if training:
        prepared.train_indices, prepared.heldout_indices = hold_out(train_indices(split, run_data.train),
                                                                   options.heldout_images, req.seed)
        prepared.image_labels = image_level_labels(split, run_data.train)
    if build:
        _build(prepared, implementation, req.resume)
    return prepared


def resolved_config(req: RunRequest) -> dict:
    """The checked configuration a run of `req` would use (`zsbench run --print-config`), and nothing else."""
    split_for(req.dataset, req.split)
    return _config(req, load_card(req.method))


def _check_protocol(card: Card, impl, split: Split) -> None:
    """The method answers the split's task protocol (an episodic split needs an episodic method)."""
    answers = impl.task_protocols
    if (not answers and split.task_protocol != "fss-zeroshot") or split.task_protocol in answers:
        return
    wanted = f"a split with protocol {' or '.join(answers)}" if answers else "a gzs3 split"
    raise ZsbenchError(f"method {card.name!r} answers {wanted}; split {split.name!r} has protocol "
                       f"{split.task_protocol!r} (see 'zsbench ls splits')")


def _config(req: RunRequest, card: Card) -> dict:
    """The run's config: the card's resolved for the dataset with `--set`, or the stored one."""
    if req.config is not None:
        cfg = apply_overrides(copy.deepcopy(req.config), req.resume_overrides)
    else:
        cfg = resolve_config(card, req.dataset, req.overrides)
    cfg = validate_config(card, cfg, req.dataset)
    dataset_cfg = recorded_options(req.dataset, cfg.get("dataset"))  # which data: in config.yaml and run.json
    if dataset_cfg:
        cfg["dataset"] = dataset_cfg
    cfg = resolve_shared_init(cfg, req.dataset)
    return _with_init(cfg, req.init) if req.init else cfg


def stored_config(config: dict, record: dict) -> dict:
    """A recorded run's config with the dataset options its run.json names filled in, so that a
    record made before a dataset recorded a key (synthetic `version`) rebuilds the same data."""
    cfg = copy.deepcopy(config)
    cfg["dataset"] = {**record_options(record["dataset"]), **(cfg.get("dataset") or {})}
    return cfg


def _with_init(cfg: dict, init: str) -> dict:
    path = Path(init).expanduser().resolve()
    if not path.is_file():
        raise ZsbenchError(f"--init {init}: no such file")
    cfg["backbone"]["init"] = str(path)
    cfg["backbone"]["shared_init"] = None  # --init replaces a card's `init: shared`
    return cfg


def split_for(dataset: str, name: str | None) -> Split:
    """The split `name` (default: the dataset's), checked to be one of `dataset`."""
    DATASETS.get(dataset)  # an unknown name: one line with the known ones
    name = name or default_split(dataset)
    if name is None:
        raise ZsbenchError(f"dataset {dataset!r} has no default split; pass --split")
    split = load_split(name)
    if split.dataset != dataset:
        raise ZsbenchError(f"split {split.name!r} is for dataset {split.dataset!r}, not {dataset!r}")
    return split


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ZsbenchError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ZsbenchError(f"--device {name}: this machine has no CUDA device (torch {torch.__version__}); "
                           f"use --device cpu")
    return device


class _Datasets:
    """Datasets built once per process and shared by every run of a comparison."""

    def __init__(self):
        self._cache: dict = {}

    def get(self, name: str, part: str, root, cfg: dict):
        key = (name, part, root, json.dumps(cfg, sort_keys=True, default=str))
        if key not in self._cache:
            self._cache[key] = build_dataset(name, part, root, cfg)
        return self._cache[key]


_DATASETS = _Datasets()


def _data_options(req: RunRequest, cfg: dict, split: Split) -> tuple[dict, str | None]:
    """(dataset options, data root) of a run: `--data-root` wins over the config's `dataset.root`."""
    options = dict(cfg["dataset"])
    root = req.data_root or options.pop("root", None)
    options.setdefault("classes", split.classes.name)  # the label space a multi-space dataset must yield
    return options, root


def _datasets(req: RunRequest, cfg: dict, split: Split) -> RunData:
    options, root = _data_options(req, cfg, split)
    # Only the synthetic benchmark has a val part; its images serve the diagnostic probes alone.
    with_val = dataset_info(req.dataset).synthetic and cfg["diagnostics"]
    val = _DATASETS.get(req.dataset, "val", root, options) if with_val else None
    return RunData(options=options, root=root, train=_DATASETS.get(req.dataset, "train", root, options),
                   test=_DATASETS.get(req.dataset, "test", root, options), val=val)


def _embedding_source(req: RunRequest, cfg: dict, split: Split, run_data: RunData | None):
    """The dataset the embedding provider reads: the training set; without datasets, the test part
    only for the provider that takes its vectors from the dataset (the synthetic benchmark's)."""
    if run_data is not None:
        return run_data.train
    if cfg["embeddings"]["provider"] != "dataset":
        return None
    options, root = _data_options(req, cfg, split)
    return _DATASETS.get(req.dataset, "test", root, options)


def class_space(split: Split, embeddings: np.ndarray | torch.Tensor) -> ClassSpace:
    """The classes of `split` as a method sees them: evaluation order, seen mask, one vector each."""
    vectors = torch.from_numpy(embeddings) if isinstance(embeddings, np.ndarray) else embeddings
    return ClassSpace(split.eval_names, torch.from_numpy(split.seen_mask), vectors, split.ignore_index,
                      split.calibration_val)


def hold_out(indices: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(training images, held-out images): `n` of `indices` chosen by the run seed, kept out of training
    for periodic evaluation (engine.heldout_images); (indices, None) when n is 0."""
    if not n:
        return indices, None
    if n >= len(indices):
        raise ZsbenchError(f"engine.heldout_images={n}: the split's training policy leaves {len(indices)} training "
                           f"images; hold out fewer")
    chosen = np.random.default_rng([seed, 4242]).choice(len(indices), size=n, replace=False)
    keep = np.ones(len(indices), dtype=bool)
    keep[chosen] = False
    return indices[keep], np.sort(indices[chosen])


def train_indices(split: Split, dataset) -> np.ndarray:
    """Training images after the split's policy (drop_images_with_unseen removes some).

    Uses the per-image class presence, computed in parallel once and cached on disk for
    datasets read from files (datasets/presence.py).
    """
    n = len(dataset)
    if split.train_policy != "drop_images_with_unseen":
        return np.arange(n)
    presence = class_presence(dataset)
    unseen_raw = [split.classes.id_of(c) for c in split.unseen]
    return np.flatnonzero(~presence[:, unseen_raw].any(axis=1)).astype(np.int64)


def _build(prepared: PreparedRun, impl, resume: ResumePoint | None) -> None:
    """The method, built before any folder exists: a bad --init file, backbone option or config
    leaves nothing behind, and the protocol flags (which may depend on the config, e.g. zs3net's
    stage-3 variant) are known up front."""
    ensure_shared_init(prepared.cfg, prepared.split.dataset)
    torch.manual_seed(prepared.seed)
    method = build_method(impl, prepared.cfg, prepared.classes).to(prepared.device)
    prepared.flags = method.protocol_flags()
    broadcast_module(method)  # several processes: rank 0's initial weights everywhere
    prepare_method(method, prepared.options)
    prepared.init_report = getattr(getattr(method, "backbone", None), "init_report", None)
    if resume is not None:
        _check_same_init(resume, prepared.init_report)
    prepared.method = method


def build_method(impl, cfg: dict, classes: ClassSpace):
    """The method of a run, built from its validated config, with its stage schedule read once.

    No error net here: every config reaching this point has passed `validate_config` (or, for an
    implementation other than the card's, the method's own `check_config`), which refuses a
    value of the wrong kind or a missing key with one line naming it, so an exception from
    here is a bug in the method, and its traceback is what finds it."""
    method = impl(cfg, classes)
    method.stages()
    return method


def _check_same_init(resume: ResumePoint, report: dict | None) -> None:
    try:
        before = load_record(resume.run_dir).get("backbone_init")
    except ZsbenchError:
        return
    if before and report and before.get("sha256") != report.get("sha256"):
        raise ZsbenchError(f"{report['path']}: the backbone init file changed since {resume.run_dir.name} started "
                           f"(sha256 {before['sha256'][:12]} then, {report['sha256'][:12]} now); resuming needs the "
                           f"same file")
