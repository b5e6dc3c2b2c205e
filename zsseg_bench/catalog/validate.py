"""`zsbench validate`: every split file, method card and published table, or the files given.

Each problem is one line naming the file and the field. Returns the list of problems.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from zsseg_bench.catalog.cards import card_paths, load_card, resolve_config
from zsseg_bench.catalog.splits import load_split, split_paths
from zsseg_bench.errors import ZsbenchError

__all__ = ["validate_all", "validate_paths"]


def _check_card_file(path: Path) -> list[str]:
    from zsseg_bench.catalog.cards import _parse
    from zsseg_bench.methods import IMPLEMENTATIONS
    from zsseg_bench.methods.common.backbones import BACKBONES

    problems = []
    try:
        card = _parse(path)
    except ZsbenchError as exc:
        return [str(exc)]
    if card.impl not in IMPLEMENTATIONS:
        problems.append(f"{path}: field 'impl': unknown implementation {card.impl!r}; "
                        f"known: {', '.join(IMPLEMENTATIONS.names())}")
    if card.base:
        try:
            load_card(card.base, path.parent.parent)
        except ZsbenchError as exc:
            problems.append(f"{path}: field 'base': {exc}")
    for dataset in ["*", *card.datasets]:
        try:
            cfg = resolve_config(card, dataset, (), path.parent.parent)
        except ZsbenchError as exc:
            problems.append(str(exc))
            continue
        if card.wraps:
            from zsseg_bench.methods.self_training import check_st_cfg

            try:
                check_st_cfg(cfg.get("self_training"))
            except ZsbenchError as exc:
                problems.append(f"{path} ({dataset}): {exc}")
        backbone = cfg.get("backbone", {}).get("name", "small-cnn")
        if backbone not in BACKBONES:
            problems.append(f"{path}: field 'backbone.name' ({dataset}): unknown backbone {backbone!r}; "
                            f"known: {', '.join(BACKBONES.names())}")
    return problems


def _check_split_file(path: Path) -> list[str]:
    try:
        load_split(path)
    except ZsbenchError as exc:
        return [str(exc)]
    return []


def _kind(path: Path) -> str:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return "split" if "splits" in path.parts else "card"
    if isinstance(raw, dict) and "impl" in raw:
        return "card"
    return "split"


def validate_paths(paths) -> list[str]:
    problems = []
    for p in map(Path, paths):
        if not p.is_file():
            problems.append(f"{p}: no such file")
            continue
        problems += _check_card_file(p) if _kind(p) == "card" else _check_split_file(p)
    return problems


def validate_all() -> tuple[int, list[str]]:
    """(number of files checked, problems) over splits/, methods/ and results/published/."""
    from zsseg_bench.catalog.published import published_frame

    files = split_paths() + card_paths()
    problems = validate_paths(files)
    try:
        from zsseg_bench.catalog.splits import TASK_PROTOCOLS
        from zsseg_bench.metrics.scores import METRIC_NAMES

        pub = published_frame()
        values = pub[list(METRIC_NAMES)].stack().dropna()
        if ((values < 0) | (values > 1)).any():
            problems.append("results/published: metric values must be fractions in [0, 1]")
        for _, row in pub[~pub.protocol.isin(TASK_PROTOCOLS)].iterrows():
            problems.append(f"results/published/{row.file}: field 'protocol': {row.protocol!r} is not one of "
                            f"{TASK_PROTOCOLS}")
        files.append(Path("results/published"))
    except ZsbenchError as exc:
        problems.append(str(exc))
    return len(files), problems
