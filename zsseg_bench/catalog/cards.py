"""Method cards: the data half of a method (`methods/<family>/<name>.yaml`).

A card names its implementation (`impl`), may inherit another card's settings (`base`, one
level), and holds defaults for every dataset (`config`) plus per-dataset overrides
(`datasets.<name>`). The resolved config of a run is, in order of precedence:

    --set key=value  >  card.datasets[ds]  >  card.config  >  base.datasets[ds]  >  base.config

`--set +key=value` adds a key the schema does not have, on purpose: it is listed in the config's
`added_keys`, which the schema check leaves alone (a plain `--set` of an unknown key is refused).

Published numbers are not copied into cards: a card says under which method key its rows
appear in `results/published/` (`published_as`), and which settings those rows need
(`faithful`).

Self-training: a card with `wraps: <card>` (impl `<wrapped impl>+st`) is that card followed by
self-training. Its config is the wrapped card's resolved config, then the self-training
defaults (`methods/self_training/_defaults.yaml`, per dataset), then its own `config` and
`datasets`. `<name>+st` resolves for every card `<name>`: from `methods/*/<name>+st.yaml` if
that file exists, otherwise synthesised from the wrapped card and the defaults. Files whose
name starts with an underscore hold shared data and are not cards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from zsseg_bench.catalog.yamlio import YAMLError, load_yaml
from zsseg_bench.errors import ZsbenchError, did_you_mean
from zsseg_bench.paths import extra_card_dirs, methods_dir

__all__ = ["Card", "load_card", "list_cards", "card_paths", "resolve_config", "apply_overrides", "parse_override",
           "deep_merge", "ST_SUFFIX", "st_defaults_path", "load_st_defaults"]

ST_SUFFIX = "+st"

_REQUIRED = ("name", "version", "impl", "title", "paper", "config")
_OPTIONAL = ("base", "code", "datasets", "published_as", "faithful", "notes", "in_default_run", "wraps",
             "uses_unseen_labels", "transductive", "budget")


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
    # The synthetic schedule's budget (issue 16's equal budgets): feature-learning images, the official
    # schedule it scales and the factor; documentation that tests/methods/test_budgets.py checks.
    budget: dict = field(default_factory=dict)

    @property
    def published_key(self) -> str:
        return self.published_as or self.name


def card_paths(base: Path | None = None) -> list[Path]:
    """The card files under `base` (default: methods/ and the ZSBENCH_CARDS folders)."""
    roots = [base] if base is not None else [methods_dir(), *extra_card_dirs()]
    paths, seen = [], {}
    for root in roots:
        for p in sorted(root.glob("*/*.yaml")):
            if p.name.startswith("_"):
                continue
            if p.stem in seen:
                raise ZsbenchError(f"{p}: card name {p.stem!r} is taken by {seen[p.stem]}; rename the file and its "
                                   f"'name' field")
            seen[p.stem] = p
            paths.append(p)
    return paths


def st_defaults_path(base: Path | None = None) -> Path:
    return (base or methods_dir()) / "self_training" / "_defaults.yaml"


def load_st_defaults(base: Path | None = None) -> dict:
    """{"version", "config", "datasets"}: the self-training layer of every '<method>+st'."""
    path = st_defaults_path(base)
    try:
        raw = load_yaml(path.read_text())
    except OSError:
        raise ZsbenchError(f"{path}: self-training defaults not found; restore the file from the repository") from None
    except YAMLError:
        raise ZsbenchError(f"{path}: not valid YAML; fix the syntax") from None
    if not isinstance(raw, dict) or set(raw) - {"version", "config", "datasets"} or "config" not in raw:
        raise ZsbenchError(f"{path}: expected a mapping with 'version', 'config' and optional 'datasets'")
    for key in ("config", "datasets"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise ZsbenchError(f"{path}: field '{key}': must be a mapping")
    return {"version": raw.get("version", 1), "config": raw["config"] or {}, "datasets": raw.get("datasets") or {}}


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
    if raw.get("wraps") is not None and raw.get("base") is not None:
        raise ZsbenchError(f"{path}: fields 'base' and 'wraps': a self-training card wraps one card and takes its "
                           f"settings from it; remove 'base'")
    return Card(name=raw["name"], version=raw["version"], impl=raw["impl"], title=raw["title"], paper=raw["paper"],
                config=raw["config"] or {}, path=path, base=raw.get("base"), code=raw.get("code", ""),
                datasets=raw.get("datasets") or {}, published_as=raw.get("published_as", ""),
                faithful=raw.get("faithful", ""), notes=raw.get("notes", ""),
                in_default_run=bool(raw.get("in_default_run", True)), wraps=raw.get("wraps"),
                budget=raw.get("budget") or {})


def list_cards(base: Path | None = None) -> list[Card]:
    return [_parse(p) for p in card_paths(base)]


def load_card(name: str, base: Path | None = None) -> Card:
    for path in card_paths(base):
        if path.stem == name:
            return _parse(path)
    names = [p.stem for p in card_paths(base)]
    wrapped = name[: -len(ST_SUFFIX)] if name.endswith(ST_SUFFIX) else None
    if wrapped in names:
        return _synthesize_st_card(load_card(wrapped, base), base)
    raise ZsbenchError(f"unknown method {name!r}{did_you_mean(name, names)}; run 'zsbench ls methods' "
                       f"(any method name followed by '{ST_SUFFIX}' adds self-training)")


def _synthesize_st_card(wrapped: Card, base: Path | None = None) -> Card:
    """'<name>+st' without a card file of its own: the wrapped card plus the self-training defaults."""
    defaults = load_st_defaults(base)
    return Card(name=wrapped.name + ST_SUFFIX, version=int(defaults["version"]), impl=wrapped.impl + ST_SUFFIX,
                title=f"{wrapped.title} + ST", paper=f"{wrapped.paper}; self-training: see methods/self_training",
                config={}, path=st_defaults_path(base), code=wrapped.code, datasets={},
                published_as=wrapped.published_key + ST_SUFFIX,
                notes=f"synthesised from card {wrapped.name!r} and the self-training defaults",
                in_default_run=False, wraps=wrapped.name)


def deep_merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for key, value in (b or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    """'train.lr=0.01' -> (['train', 'lr'], 0.01); the value is read as YAML. A leading '+' (an
    added key) is not part of the key."""
    if "=" not in text:
        raise ZsbenchError(f"--set {text!r}: expected key=value, e.g. --set train.iterations=200")
    key, value = text.split("=", 1)
    key = key[1:] if key.startswith("+") else key
    if not key or any(not part for part in key.split(".")):
        raise ZsbenchError(f"--set {text!r}: bad key {key!r}")
    try:
        parsed = load_yaml(value) if value else ""
    except YAMLError:
        parsed = value
    return key.split("."), parsed


def resolve_config(card: Card, dataset: str, overrides: list[str] | tuple = (), base_dir: Path | None = None) -> dict:
    layers = []
    if card.wraps:
        wrapped = load_card(card.wraps, base_dir)
        if card.impl != wrapped.impl + ST_SUFFIX:
            raise ZsbenchError(f"{card.path}: field 'impl': a card that wraps {wrapped.name!r} (impl {wrapped.impl!r}) "
                               f"must have impl {wrapped.impl + ST_SUFFIX!r}, not {card.impl!r}")
        defaults = load_st_defaults(base_dir)
        layers += [resolve_config(wrapped, dataset, (), base_dir), defaults["config"],
                   defaults["datasets"].get(dataset, {})]
    elif card.base:
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
    """`--set key=value` overrides applied, in place, to a resolved config (returned); a `+key`
    is also listed in `added_keys`."""
    for text in overrides:
        keys, value = parse_override(text)
        if text.startswith("+") and ".".join(keys) not in cfg.setdefault("added_keys", []):
            cfg["added_keys"].append(".".join(keys))
        node = cfg
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return cfg
