"""Config validation: `validate_config` (a run's resolved config against its implementation's
schema, before any run folder exists) and `zsbench validate` (every split file, method card,
published table and expected-results file, or the files given).

Each problem is one line naming the file and the field. `validate_all`/`validate_paths` return
the list of problems.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from zsseg_bench.catalog.cards import (
    ST_SUFFIX,
    Card,
    card_paths,
    load_card,
    load_st_defaults,
    resolve_config,
    st_defaults_path,
)
from zsseg_bench.catalog.expected import expected_problems, is_expected_file
from zsseg_bench.catalog.schema import checked, section_at
from zsseg_bench.catalog.splits import load_split, split_paths
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.paths import methods_dir

__all__ = ["validate_config", "validate_all", "validate_paths"]

# Sections that their component (backbone builder, embedding provider, engine, dataset builder)
# checks again on its own: a key added there with --set + would be refused by it.
_CHECKED_BY_COMPONENTS = ("backbone", "embeddings", "engine", "dataset")


def _shown(path: Path) -> str:
    """A card's path as the user knows it (methods/<family>/<name>.yaml)."""
    try:
        return str(Path(path).resolve().relative_to(methods_dir().resolve().parent))
    except ValueError:
        return str(path)


def validate_config(card: Card, cfg: dict, dataset: str, where: str = "") -> dict:
    """`cfg` (the card's resolved config on `dataset`) checked against the card's implementation
    and the dataset's options, with the schema defaults filled in (the dataset section stays as
    given: its builder fills its defaults). One ZsbenchError line, exit 2, otherwise."""
    from zsseg_bench.datasets import dataset_options
    from zsseg_bench.methods import IMPLEMENTATIONS

    where = where or _shown(card.path)
    impl = IMPLEMENTATIONS.get(card.impl)
    schema = impl.config_schema()
    if schema is None:
        raise ZsbenchError(f"{where}: implementation {card.impl!r} declares no config schema (Method.Config)")
    for key in cfg.get("added_keys") or []:
        parts = str(key).split(".")
        section, _ = section_at(schema, cfg, parts[:-1])
        if section is not None and parts[-1] in section.model_fields:
            raise ZsbenchError(f"{where}: --set +{key}: {card.name} has the key {key!r} already; set it without '+'")
        if len(parts) > 1 and parts[0] in _CHECKED_BY_COMPONENTS:
            raise ZsbenchError(f"{where}: --set +{key}: keys cannot be added to '{parts[0]}', whose keys are "
                               f"fixed by what reads it; add it elsewhere (e.g. +notes.{parts[-1]})")
    out = impl.check_config(cfg, where=where, owner=card.name)
    checked(dataset_options(dataset), cfg.get("dataset"), where=where, owner=dataset, prefix=("dataset",))
    return out


def _datasets_of(card: Card, base: Path) -> list[str]:
    """synthetic and every dataset a card (its base, the card it wraps, the ST defaults) has a block for."""
    names = ["synthetic", *card.datasets]
    for other in (card.base, card.wraps):
        if other:
            names += _datasets_of(load_card(other, base), base)
    if card.wraps:
        names += list(load_st_defaults(base)["datasets"])
    return list(dict.fromkeys(names))


def _check_card(card: Card, base: Path) -> list[str]:
    """The card's resolved config on every dataset it knows, against the schemas (one line each)."""
    from zsseg_bench.datasets import DATASETS

    problems = []
    for dataset in _datasets_of(card, base):
        where = f"{_shown(card.path)} ({card.name} on {dataset})"
        if dataset not in DATASETS:
            problems.append(f"{where}: field 'datasets.{dataset}': unknown dataset; known: "
                            f"{', '.join(DATASETS.names())}")
            continue
        try:
            validate_config(card, resolve_config(card, dataset, (), base), dataset, where)
        except ZsbenchError as exc:
            problems.append(str(exc))
    return problems


def _check_card_file(path: Path) -> list[str]:
    from zsseg_bench.catalog.cards import _parse
    from zsseg_bench.methods import IMPLEMENTATIONS

    base = path.parent.parent
    try:
        card = _parse(path)
    except ZsbenchError as exc:
        return [str(exc)]
    if card.impl not in IMPLEMENTATIONS:
        return [f"{path}: field 'impl': unknown implementation {card.impl!r}; "
                f"known: {', '.join(IMPLEMENTATIONS.names())}"]
    for other, field in ((card.base, "base"), (card.wraps, "wraps")):
        if other:
            try:
                load_card(other, base)
            except ZsbenchError as exc:
                return [f"{path}: field '{field}': {exc}"]
    problems = _check_card(card, base)
    if not problems and not card.wraps and st_defaults_path(base).is_file():
        # '<name>+st' exists for every card: synthesised unless a card file of its own says more.
        st = load_card(card.name + ST_SUFFIX, base)
        if st.path.name != f"{st.name}.yaml":
            problems += _check_card(st, base)
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
        if is_expected_file(p):
            problems += expected_problems([p])[1]
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
    from zsseg_bench.catalog.anchors import check_anchors

    problems += check_anchors()
    n_expected, expected = expected_problems()
    return len(files) + n_expected, problems + expected
