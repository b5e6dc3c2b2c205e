"""Real-data config parity: for every method card and every real dataset it declares, the optimizers
the harness builds (which parameters are in each group, their lr and weight decay, momentum or
betas, and the lr schedule stepped through the stage) equal the official trainers'
(official_optimizers.py).

The method is built from the card's resolved configuration on the 'meta' device (no weights are
allocated: DeepLabv2 ResNet-101 and the 600-d heads cost nothing) with the split's classes and
random 600-d embeddings; the datasets themselves are not needed. `configure_optimizers` is called
as the engine calls it; `on_stage_start`, which the engine calls first, only sets `requires_grad`
as the model is built for these stages (and for the patch-wise finetune samples a patch bank),
so it is not called here.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch

from tests.methods.official_optimizers import OFFICIAL, REAL_DATASETS, SGD, Adam, Poly, Stage
from zsseg_bench.catalog.cards import Card, list_cards, load_card, resolve_config
from zsseg_bench.methods import IMPLEMENTATIONS
from zsseg_bench.runs.prepare import build_method, class_space, split_for

EMBEDDING_DIM = 600  # fastText + word2vec, the embedding of every official real-data run but ZS3's own

def declared_datasets(card: Card) -> set[str]:
    """The real datasets with a block in the card or in the card it builds on (base or wrapped)."""
    names = set(card.datasets)
    for other in (card.base, card.wraps):
        if other:
            names |= declared_datasets(load_card(other))
    return names & set(REAL_DATASETS)


CASES = sorted((card.name, ds) for card in list_cards() for ds in declared_datasets(card))


def test_the_table_covers_every_card_and_real_dataset():
    assert set(OFFICIAL) == set(CASES)


def build_on_meta(card_name: str, dataset: str, overrides=()):
    card = load_card(card_name)
    cfg = resolve_config(card, dataset, list(overrides))
    split = split_for(dataset, None)
    embeddings = torch.nn.functional.normalize(torch.randn(len(split.eval_names), EMBEDDING_DIM), dim=1)
    with torch.device("meta"):
        return build_method(IMPLEMENTATIONS.get(card.impl), cfg, class_space(split, embeddings))


# ---- comparison ---------------------------------------------------------------------------------------
def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def _expected_groups(spec, names: list[str], where: str) -> dict:
    """parameter name -> the official group it belongs to (names in no group are in no optimizer)."""
    out = {}
    for name in names:
        hits = [g for g in spec.groups if re.fullmatch(g.pattern, name)]
        assert len(hits) <= 1, f"{where}: table error, {name} matches {[g.what for g in hits]}"
        if hits:
            out[name] = hits[0]
    return out


def _membership(actual: dict, expected: dict, where: str) -> list[str]:
    problems = []
    for label, names in (("missing from", sorted(set(expected) - set(actual))),
                         ("not in the official", sorted(set(actual) - set(expected)))):
        if names:
            problems.append(f"{where}: {len(names)} parameters {label} the optimizer, e.g. {names[:3]}")
    return problems


def _hyper(opt, spec, where: str) -> list[str]:
    kind = torch.optim.SGD if isinstance(spec, SGD) else torch.optim.Adam
    if type(opt) is not kind:
        return [f"{where}: {type(opt).__name__}, official {kind.__name__}"]
    problems = []
    for g in opt.param_groups:
        if isinstance(spec, SGD) and (not _close(g["momentum"], spec.momentum) or g["nesterov"] != spec.nesterov
                                      or g["dampening"] != 0):
            problems.append(f"{where}: momentum {g['momentum']} nesterov {g['nesterov']}, official "
                            f"{spec.momentum} {spec.nesterov}")
        if isinstance(spec, Adam) and (tuple(g["betas"]) != spec.betas or g["amsgrad"]):
            problems.append(f"{where}: betas {g['betas']}, official {spec.betas}")
    return problems


def _lr_wd(opt, owner: dict, expected: dict, factor: float, where: str) -> list[str]:
    """Each parameter's lr (the official group lr times the schedule factor) and weight decay."""
    wrong: dict[tuple, int] = {}
    for g in opt.param_groups:
        for p in g["params"]:
            official = expected.get(owner[id(p)])
            if official is None:
                continue
            want = (official.lr * factor, official.weight_decay)
            if not (_close(g["lr"], want[0]) and _close(g["weight_decay"], want[1])):
                key = (official.what, g["lr"], g["weight_decay"], *want)
                wrong[key] = wrong.get(key, 0) + 1
    return [f"{where}: {what} ({n} parameters): lr {lr:.6g} weight decay {wd:g}, official lr {want_lr:.6g} "
            f"weight decay {want_wd:g}" for (what, lr, wd, want_lr, want_wd), n in wrong.items()]


def _checkpoints(schedules, length: int) -> list[int]:
    points = {0, 1, length // 2, length - 1}
    for s in schedules:
        if isinstance(s, Poly):
            points |= {s.every - 1, s.every, s.every + 1}
        elif hasattr(s, "start"):
            points |= {s.start - 1, s.start, s.start + s.step - 1, s.start + s.step, s.start + 2 * s.step}
    return sorted(t for t in points if 0 <= t < length)


def _schedule(opt, sched, spec, owner, expected, stage, official: Stage, where: str) -> list[str]:
    """Step the harness's scheduler through the stage; at each checkpoint compare every group's lr."""
    length = official.iterations or stage.iterations
    done = 0
    for t in _checkpoints([spec.schedule], stage.iterations):
        with warnings.catch_warnings():  # stepping a scheduler without optimizer steps is the point here
            warnings.simplefilter("ignore", UserWarning)
            while done < t and sched is not None:
                sched.step()
                done += 1
        problems = _lr_wd(opt, owner, expected, spec.schedule.factor(t, length), f"{where} at iteration {t}")
        if problems:
            return problems[:2]  # the first iteration that differs says enough
    return []


def compare_stage(method, stage, official: Stage) -> list[str]:
    where = f"{stage.name}"
    problems = []
    if official.iterations is not None and stage.iterations != official.iterations:
        problems.append(f"{where}: {stage.iterations} iterations, official {official.iterations}")
    optimizers = method.configure_optimizers(stage)
    if set(optimizers) != set(official.optimizers):
        return problems + [f"{where}: optimizers {sorted(optimizers)}, official {sorted(official.optimizers)}"]
    named = list(method.named_parameters())
    owner = {id(p): n for n, p in named}
    for opt_name, spec in official.optimizers.items():
        opt, sched = optimizers[opt_name]
        at = f"{where}/{opt_name}"
        expected = _expected_groups(spec, [n for n, _ in named], at)
        actual = {owner[id(p)] for g in opt.param_groups for p in g["params"]}
        found = _membership(actual, expected, at) + _hyper(opt, spec, at)
        found += _lr_wd(opt, owner, expected, spec.schedule.factor(0, official.iterations or stage.iterations), at)
        # The schedule only once the groups are right: otherwise every iteration repeats their lr problem.
        problems += found or _schedule(opt, sched, spec, owner, expected, stage, official, at)
    return problems


def parity_problems(method, table: dict[str, Stage]) -> list[str]:
    stages = method.stages()
    if [s.name for s in stages] != list(table):
        return [f"stages {[s.name for s in stages]}, official {list(table)}"]
    problems = []
    for stage in stages:
        if table[stage.name].optimizers is not None:
            problems += compare_stage(method, stage, table[stage.name])
    return problems


@pytest.mark.parametrize("card_name,dataset", CASES)
def test_optimizers_equal_the_official_trainers(card_name, dataset):
    problems = parity_problems(build_on_meta(card_name, dataset), OFFICIAL[(card_name, dataset)])
    assert not problems, f"{card_name} on {dataset}:\n" + "\n".join(problems)


# ---- the comparison can fail ----------------------------------------------------------------------------
def test_a_wrong_multiplier_or_schedule_is_reported():
    """The synthetic step-1 multipliers (1x head, 1x context) and a D decay starting later than the
    official one, on cagnet-pi voc12: the messages name the groups and the first differing iteration."""
    method = build_on_meta("cagnet-pi", "voc12", ["step1.head_lr_mult=1", "step1.context_lr_mult=1"])
    problems = "\n".join(parity_problems(method, OFFICIAL[("cagnet-pi", "voc12")]))
    assert "step1/backbone: ASPP weights (10x) (4 parameters): lr 0.00025" in problems
    assert "step1/backbone: ASPP biases (20x, no weight decay) (4 parameters): lr 0.0005" in problems
    assert "step1/backbone: contextual convs (5x) (6 parameters): lr 0.00025" in problems
    late = build_on_meta("cagnet-pi", "voc12", ["step1.decay_D.start=12000"])
    problems = "\n".join(parity_problems(late, OFFICIAL[("cagnet-pi", "voc12")]))
    assert "step1/discriminator at iteration 10000: discriminator + classifier" in problems
