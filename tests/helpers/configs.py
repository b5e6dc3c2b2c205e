"""Configs for tests: a card's resolved config, sections patched, validated as a run's is.

Method configs are strict (every key a card states is required), so a test starts from the card
and changes only what it is about. The result is checked by `validate_config`, as
runs/prepare.py checks every run's, so it carries the schema's defaults: the engine reads a
validated config and has no defaults of its own."""

from __future__ import annotations

from zsseg_bench.catalog.cards import deep_merge, load_card, resolve_config
from zsseg_bench.catalog.validate import validate_config


def card_config(method: str, dataset: str = "synthetic", overrides=(), *, validate: bool = True, **sections) -> dict:
    """`method`'s resolved config on `dataset`, with `overrides` (--set strings) and then `sections`
    (mappings deep-merged into the sections of the same name; other values replace), validated
    (`validate=False`: as merged, for tests of the validation itself)."""
    card = load_card(method)
    cfg = deep_merge(resolve_config(card, dataset, overrides), sections)
    return validate_config(card, cfg, dataset) if validate else cfg
