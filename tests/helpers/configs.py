"""Configs for tests: a card's resolved config, sections patched, validated as a run's is.

Method configs are strict (every key a card states is required), so a test starts from the card
and changes only what it is about. The result is checked by `validate_config`, as
runs/prepare.py checks every run's, so it carries the schema's defaults: the engine reads a
validated config and has no defaults of its own. Like a run's, its `backbone.init: shared` is
resolved and the shared initialisation made (with the tests' tiny pretraining schedule, in the
session's cache folder)."""

from __future__ import annotations

from tests.helpers.settings import TINY_PRETRAIN
from zsseg_bench.catalog.cards import apply_overrides, deep_merge, load_card, resolve_config
from zsseg_bench.catalog.validate import validate_config
from zsseg_bench.pretrain.shared import ensure_shared_init, resolve_shared_init


def card_config(method: str, dataset: str = "synthetic", overrides=(), *, validate: bool = True, **sections) -> dict:
    """`method`'s resolved config on `dataset`, with `overrides` (--set strings) and then `sections`
    (mappings deep-merged into the sections of the same name; other values replace), validated
    (`validate=False`: as merged, for tests of the validation itself)."""
    card = load_card(method)
    cfg = deep_merge(resolve_config(card, dataset, overrides), sections)
    if cfg["backbone"]["name"] == "small-cnn" and "pretrain" not in cfg["backbone"]:
        cfg = apply_overrides(cfg, TINY_PRETRAIN)
    if not validate:
        return cfg
    cfg = resolve_shared_init(validate_config(card, cfg, dataset), dataset)
    ensure_shared_init(cfg, dataset)
    return cfg
