"""Dead-mechanism rules: when a run's diagnostics (run.json `method_facts.diagnostics`, written by
the methods and the engine's probes) say that the mechanism a method is named for did not work.

Each rule is written once here, with its threshold and why; `zsbench run` prints one warning line
per dead mechanism at the end, and the report lists them.

* **Contextual module dead** (CaGNet): at the end of a step-1 stage (mean over its last log
  window) more than `CONTEXT_ZERO_SHARE` of the contextual-pool outputs are exactly 0, or the KL
  term is below `CONTEXT_MIN_KLD`. The pool is a bias-free ReLU convolution feeding bias-free mu
  and logvar convolutions: where it outputs 0, mu = logvar = 0 exactly and the latent is pure
  N(0, I) noise, so "exactly zero almost everywhere" is the module switched off, not small. A KL
  below 1e-4 nats per latent dimension and pixel means the posterior equals the prior to four
  decimals: the latent carries no context (the dead module of issue 16 measured 6e-6).
* **Generated unseen features off their class** (ZS3Net, CaGNet): at the last generator check, the
  mean own-class share of the unseen classes is below chance (1 / classes present): the generated
  unseen features sit nearer other classes' real features than a random assignment would, so the
  classifier cannot learn those classes from them (methods/common/diagnostics.py).
* **No unseen class learnt** (the methods whose stages are probed on `val`: ZS3Net, CaGNet, and
  the weak-shot rows, whose novel classes count as unseen here): at the last block boundary of the
  val trajectory, val U-mIoU is below `MIN_UNSEEN_MIOU`: the stages meant to move the classifier
  towards the unseen classes (generated features, finetune; image-level labels and SimFormer's
  transfers) left it predicting almost none of them.
* **Pseudo-labels on background** (self-training): more than `ST_BACKGROUND_SHARE` of the
  pseudo-labels on the checked training images fall on background/unlabelled pixels: fewer than
  one in ten labels an unseen object, so self-training mostly teaches background as unseen classes.
"""

from __future__ import annotations

__all__ = ["CONTEXT_ZERO_SHARE", "CONTEXT_MIN_KLD", "MIN_UNSEEN_MIOU", "ST_BACKGROUND_SHARE", "dead_mechanisms",
           "warning_lines"]

CONTEXT_ZERO_SHARE = 0.95
CONTEXT_MIN_KLD = 1e-4
MIN_UNSEEN_MIOU = 0.01
ST_BACKGROUND_SHARE = 0.9


def _context(diag: dict) -> list[str]:
    out = []
    for entry in diag.get("context", []):
        zero, kld = entry.get("zero_share"), entry.get("kld")
        if (zero is not None and zero > CONTEXT_ZERO_SHARE) or (kld is not None and kld < CONTEXT_MIN_KLD):
            out.append(f"contextual module dead after {entry['after']}: {100 * zero:.1f} % of its outputs exactly 0 "
                       f"(limit {100 * CONTEXT_ZERO_SHARE:.0f} %), KL {kld:.2g} (limit {CONTEXT_MIN_KLD:g}), "
                       f"mean abs(mu) {entry['mu_abs']:.2g}")
    return out


def _generator(diag: dict) -> list[str]:
    checks = diag.get("generated_features", [])
    if not checks:
        return []
    last = checks[-1]
    unseen, chance = last.get("unseen_mean"), last.get("chance")
    if unseen is None or chance is None or unseen >= chance:
        return []
    return [f"generated unseen features off their class after {last['after']}: mean own-class share {unseen:.3f} "
            f"below chance {chance:.3f} (nearest real class mean, {last['part']} images)"]


def _unseen_learnt(diag: dict) -> list[str]:
    trajectory = diag.get("val_trajectory") or []
    if not trajectory or trajectory[-1].get("unseen_miou") is None:
        return []
    last = trajectory[-1]
    if last["unseen_miou"] >= MIN_UNSEEN_MIOU:
        return []
    return [f"no unseen class learnt by the end of {last['label']}: val U-mIoU {last['unseen_miou']:.3f} "
            f"(limit {MIN_UNSEEN_MIOU:g}) at iteration {last['iteration']}"]


def _self_training(facts: dict) -> list[str]:
    check = (facts.get("self_training") or {}).get("pseudo_label_check") or {}
    share = check.get("background_share")
    if share is None or share <= ST_BACKGROUND_SHARE:
        return []
    return [f"pseudo-labels mostly on background: {100 * share:.1f} % of {check['pixels']} pseudo-labelled pixels "
            f"(limit {100 * ST_BACKGROUND_SHARE:.0f} %)"]


def dead_mechanisms(method_facts: dict | None) -> list[str]:
    """One line per dead mechanism in a run's method facts (empty: none, or no diagnostics)."""
    facts = method_facts or {}
    diag = facts.get("diagnostics") or {}
    return _context(diag) + _generator(diag) + _unseen_learnt(diag) + _self_training(facts)


def warning_lines(records: list[dict]) -> list[str]:
    """'method seed N: ...' lines for the records (run.json contents) of finished runs."""
    return [f"{rec.get('method')} seed {rec.get('seed')}: {line}"
            for rec in records for line in dead_mechanisms(rec.get("method_facts"))]
