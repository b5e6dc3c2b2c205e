"""`backbone.init: shared`: resolve, create (once, under a lock) and load the shared initialisation.

* **Hash.** The file is named by the SHA-256 of everything that determines it: the code version
  below, the dataset, its version and world (`dataset.version`, `dataset.world`), the auxiliary data's spec, the
  backbone architecture (name, width, dilations, head dilations), the input normalisation and
  the pretraining schedule (`backbone.pretrain`). Nothing else enters (not the run's seed, not
  the method), so every method of a comparison shares one file. `CODE_VERSION` is bumped when
  `train.py` or `aux.py` change what they produce.
* **Cache.** `<cache>/shared-init/<hash>.pt` (`zsseg_bench.paths.cache_dir`: `~/.cache/zsseg-bench`,
  or `$ZSBENCH_CACHE`), with `<hash>.json` beside it saying what it is. Created on first use,
  under an exclusive lock on `<hash>.lock`, written to a temporary name and renamed into place,
  so a second process waits and then reads the finished file, and an interrupted one leaves
  no partial file under the final name.
* **Loading** (`load.py`, which the backbone builder calls): through `engine/torchfile.py`, weights only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from zsseg_bench.catalog.schema import checked
from zsseg_bench.datasets import dataset_options
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.pretrain.aux import aux_spec
from zsseg_bench.pretrain.load import SHARED, shared_init_path

__all__ = ["CODE_VERSION", "shared_spec", "spec_hash", "resolve_shared_init", "ensure_shared_init", "world_options"]

CODE_VERSION = "1"


def shared_spec(cfg: dict, dataset: str) -> dict:
    """What determines the shared initialisation of the run config `cfg` on `dataset`."""
    b = cfg["backbone"]
    if dataset != "synthetic" or "pretrain" not in b:
        raise ZsbenchError(f"backbone.init: {SHARED} is the synthetic benchmark's pretrained small-cnn; this run "
                           f"has dataset {dataset!r} and backbone {b['name']!r}. Give a weight file "
                           f"(backbone.init: PATH) or none")
    schedule = dict(b["pretrain"])
    options = world_options(cfg, dataset)
    return {
        "code": CODE_VERSION, "dataset": dataset, "version": options["version"], "world": options["world"],
        "aux": aux_spec(options, schedule["images"]),
        "architecture": {k: b[k] for k in ("name", "width", "dilations", "head_dilations")},
        "input": {"mean": list(cfg["input"]["mean"]), "std": list(cfg["input"]["std"])},
        "schedule": schedule,
    }


def world_options(cfg: dict, dataset: str) -> dict:
    """The run's dataset options with their defaults (the world the auxiliary data comes from)."""
    return checked(dataset_options(dataset), cfg["dataset"], where="config", owner=dataset, prefix=("dataset",))


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def resolve_shared_init(cfg: dict, dataset: str) -> dict:
    """`cfg` with `backbone.shared_init` set to the hash its `init: shared` stands for (in place)."""
    if cfg.get("backbone", {}).get("init") != SHARED:
        return cfg
    cfg["backbone"]["shared_init"] = spec_hash(shared_spec(cfg, dataset))
    return cfg


def ensure_shared_init(cfg: dict, dataset: str) -> Path | None:
    """The file of `cfg`'s shared initialisation, pretrained now if no process made it before."""
    if cfg.get("backbone", {}).get("init") != SHARED:
        return None
    spec = shared_spec(cfg, dataset)
    digest = spec_hash(spec)
    path = shared_init_path(digest)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        if path.is_file():  # made by another process while this one waited
            return path
        _create(cfg, spec, digest, path)
    return path


@contextlib.contextmanager
def _locked(lock: Path):
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _create(cfg: dict, spec: dict, digest: str, path: Path) -> None:
    from zsseg_bench.pretrain.train import pretrain_backbone

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log(f"shared init: first use of {digest[:12]} (world {spec['world']}, version {spec['version']}); "
        f"pretraining {spec['schedule']['iterations']} iterations on auxiliary classes, cached in {path.parent}")
    start = time.perf_counter()
    state = pretrain_backbone(cfg, world_options(cfg, spec["dataset"]), log)
    payload = {"kind": "zsseg-bench", "method": "shared-init", "hash": digest, "spec": json.dumps(spec),
               "state_dict": state}
    _atomic(path, lambda tmp: torch.save(payload, tmp))
    _atomic(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps({"hash": digest, **spec}, indent=1)))
    log(f"shared init: {digest[:12]} ready in {time.perf_counter() - start:.1f} s")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
