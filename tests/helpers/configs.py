"""Configs for tests that build a method directly: a card's resolved config, sections patched.

Method configs are strict (every key a card states is required), so a test starts from the card
and changes only what it is about."""

from __future__ import annotations

from zsseg_bench.catalog.cards import deep_merge, load_card, resolve_config


def card_config(method: str, dataset: str = "synthetic", overrides=(), **sections) -> dict:
    """`method`'s resolved config on `dataset`, with `overrides` (--set strings) and then `sections`
    (mappings deep-merged into the sections of the same name; other values replace)."""
    return deep_merge(resolve_config(load_card(method), dataset, overrides), sections)
