"""Loading the shared initialisation into a backbone (`backbone.init: shared`; made by `shared.py`).

Read through `engine/torchfile.py` (the project's one `torch.load`, weights only): a file that holds
anything but tensors and plain values is refused, never run. The stem and body (`init_parts: body`)
go into the method's backbone; the pretraining head (auxiliary classes) is not used. The run
record's `backbone_init` holds the hash and the file's SHA-256; the resolved config holds the hash
as `backbone.shared_init`.
"""

from __future__ import annotations

from pathlib import Path

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.paths import cache_dir

__all__ = ["SHARED", "shared_init_path", "load_shared_init"]

SHARED = "shared"  # the backbone.init value


def shared_init_path(digest: str) -> Path:
    return cache_dir() / "shared-init" / f"{digest}.pt"


def load_shared_init(backbone, cfg: dict) -> dict:
    """Load the stem and body of the shared initialisation `cfg` (a backbone section) names."""
    from zsseg_bench.engine.torchfile import load_torch_file
    from zsseg_bench.engine.weights import file_sha256, load_backbone_state

    digest = cfg.get("shared_init")
    if not digest:
        raise ZsbenchError(f"backbone.init: {SHARED} is resolved by run preparation (zsseg_bench.runs.prepare); "
                           f"this config has no backbone.shared_init")
    path = shared_init_path(digest)
    if not path.is_file():
        raise ZsbenchError(f"{path}: shared initialisation {digest[:12]} is not in the cache; `zsbench run` "
                           f"creates it on first use")
    try:
        raw = load_torch_file(path, "shared initialisation")
    except ZsbenchError as exc:  # the cache is ours: deleting the file makes the next run recreate it
        raise ZsbenchError(f"{path}: unreadable shared initialisation ({str(exc).split(': ', 1)[-1]}); delete it "
                           f"and run again to recreate it") from None
    if not isinstance(raw, dict) or raw.get("hash") != digest:
        raise ZsbenchError(f"{path}: not the shared initialisation {digest[:12]}; delete it and run again")
    report = load_backbone_state(backbone, raw, path, parts="body")
    report.update(sha256=file_sha256(path), shared_init=digest)
    report["summary"] = f"shared init {digest[:12]}: " + report["summary"]
    return report
