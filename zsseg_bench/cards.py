"""Method cards: the data half of a method (`methods/<family>/<name>.yaml`).

A card names its implementation (`impl`), may inherit another card's settings (`base`, one
level), and holds defaults for every dataset (`config`) plus per-dataset overrides
(`datasets.<name>`). The resolved config of a run is, in order of precedence:

    --set key=value  >  card.datasets[ds]  >  card.config  >  base.datasets[ds]  >  base.config

Published numbers are not copied into cards: a card says under which method key its rows
appear in `results/published/` (`published_as`), and which settings those rows need
(`faithful`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from .yamlio import YAMLError, load_yaml

from .errors import ZsbenchError, did_you_mean
from .paths import methods_dir

__all__ = ["Card", "load_card", "list_cards", "card_paths", "resolve_config", "apply_overrides", "parse_override",
           "deep_merge"]

_REQUIRED = ("name", "version", "impl", "title", "paper", "config")
_OPTIONAL = ("base", "code", "datasets", "published_as", "faithful", "notes", "in_default_run", "wraps",
             "uses_unseen_labels", "transductive")


@dataclass(frozen=True)
class Card:
    name: str
    version: int
    impl: str
    title: str
    paper: str
    config: dict
    path: Path
    base: str | None = None
    code: str = ""
    datasets: dict = field(default_factory=dict)
    published_as: str = ""
    faithful: str = ""
    notes: str = ""
    in_default_run: bool = True
    wraps: str | None = None

    @property
    def published_key(self) -> str:
        return self.published_as or self.name


def card_paths(base: Path | None = None) -> list[Path]:
    return sorted((base or methods_dir()).glob("*/*.yaml"))


def _parse(path: Path) -> Card:
    try:
        raw = load_yaml(path.read_text())
    except YAMLError:
        raise ZsbenchError(f"{path}: not valid YAML; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ZsbenchError(f"{path}: a method card must be a YAML mapping")
    for key in _REQUIRED:
        if key not in raw:
            raise ZsbenchError(f"{path}: field '{key}': missing; a card needs {', '.join(_REQUIRED)}")
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        key = sorted(unknown)[0]
        raise ZsbenchError(f"{path}: field '{key}': unknown field{did_you_mean(key, _REQUIRED + _OPTIONAL)}")
    if raw["name"] != path.stem:
        raise ZsbenchError(f"{path}: field 'name': {raw['name']!r} must equal the file name {path.stem!r}")
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        raise ZsbenchError(f"{path}: field 'version': must be a positive integer")
    for key in ("config", "datasets"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise ZsbenchError(f"{path}: field '{key}': must be a mapping")
    return Card(name=raw["name"], version=raw["version"], impl=raw["impl"], title=raw["title"], paper=raw["paper"],
                config=raw["config"] or {}, path=path, base=raw.get("base"), code=raw.get("code", ""),
                datasets=raw.get("datasets") or {}, published_as=raw.get("published_as", ""),
                faithful=raw.get("faithful", ""), notes=raw.get("notes", ""),
                in_default_run=bool(raw.get("in_default_run", True)), wraps=raw.get("wraps"))


def list_cards(base: Path | None = None) -> list[Card]:
    return [_parse(p) for p in card_paths(base)]


def load_card(name: str, base: Path | None = None) -> Card:
    for path in card_paths(base):
        if path.stem == name:
            return _parse(path)
    names = [p.stem for p in card_paths(base)]
    raise ZsbenchError(f"unknown method {name!r}{did_you_mean(name, names)}; run 'zsbench ls methods'")


def deep_merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for key, value in (b or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    """'train.lr=0.01' -> (['train', 'lr'], 0.01); the value is read as YAML."""
    if "=" not in text:
        raise ZsbenchError(f"--set {text!r}: expected key=value, e.g. --set train.iterations=200")
    key, value = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ZsbenchError(f"--set {text!r}: bad key {key!r}")
    try:
        parsed = load_yaml(value) if value else ""
    except YAMLError:
        parsed = value
    return key.split("."), parsed


def resolve_config(card: Card, dataset: str, overrides: list[str] | tuple = (), base_dir: Path | None = None) -> dict:
    layers = []
    if card.base:
        base = load_card(card.base, base_dir)
        if base.base:
            raise ZsbenchError(f"{card.path}: field 'base': {card.base!r} has a base of its own; "
                               f"cards allow one level of 'base'")
        layers += [base.config, base.datasets.get(dataset, {})]
    layers += [card.config, card.datasets.get(dataset, {})]
    cfg: dict = {}
    for layer in layers:
        cfg = deep_merge(cfg, layer)
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: dict, overrides: list[str] | tuple = ()) -> dict:
    """`--set key=value` overrides applied, in place, to a resolved config (returned)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = cfg
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return cfg
