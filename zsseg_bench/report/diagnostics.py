"""The report's mechanism diagnostics: the val trajectory of the probed stages (a figure; the
generative methods' classifier and finetune stages, the weak-shot rows' training stages) and one
table row per run with the methods' own diagnostics and the dead-mechanism warnings
(runs/diagnostics.py), all read from `method_facts.diagnostics` in run.json."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsseg_bench.report.tables import MISSING, format_value
from zsseg_bench.runs.diagnostics import dead_mechanisms

__all__ = ["val_trajectory_figure", "diagnostics_table", "write_diagnostics"]


def _diagnostics(record: dict) -> dict:
    return (record.get("method_facts") or {}).get("diagnostics") or {}


def val_trajectory_figure(runs: list[tuple[str, int, dict]], stem: Path, title: str = "") -> list[Path] | None:
    """`runs`: (method, seed, run.json). One panel per probed stage (its label): seen (solid) and
    unseen (dashed) val mIoU at each block boundary, one colour per method. None without points."""
    from zsseg_bench.report.plots import _pyplot, method_colours, save_figure

    points = [{"method": m, "seed": s, **p} for m, s, rec in runs for p in _diagnostics(rec).get("val_trajectory", [])]
    if not points:
        return None
    frame = pd.DataFrame(points)
    labels = list(dict.fromkeys(frame["label"]))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(labels), figsize=(4.4 * len(labels), 3.0), squeeze=False)
    colours = method_colours(list(dict.fromkeys(frame["method"])))
    for ax, label in zip(axes.flat, labels):
        for (method, seed), part in frame[frame["label"] == label].groupby(["method", "seed"], sort=False):
            part = part.sort_values("iteration")
            ax.plot(part["iteration"], part["seen_miou"], color=colours[method], lw=1.1, marker="o", ms=2.5,
                    label=f"{method} s{seed} seen")
            ax.plot(part["iteration"], part["unseen_miou"], color=colours[method], lw=1.1, ls="--", marker="o",
                    ms=2.5, label=f"{method} s{seed} unseen")
        ax.set_title(f"{label}: val mIoU at block boundaries", fontsize=8.5)
        ax.set_xlabel("iteration")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem)


def _last(entries: list[dict], key: str):
    return entries[-1].get(key) if entries else None


def _stage_ends(trajectory: list[dict]) -> str:
    """'label seen/unseen' at the last probe of each probed stage, in stage order (e.g. a weak-shot
    teacher's scores at the end of `crosim` beside the retrained model's)."""
    ends = {p["label"]: p for p in trajectory}
    return ", ".join(f"{label} {format_value(p.get('seen_miou'), '.3f')}/{format_value(p.get('unseen_miou'), '.3f')}"
                     for label, p in ends.items())


def _row(method: str, seed: int, rec: dict) -> dict:
    diag = _diagnostics(rec)
    context, generated = diag.get("context", []), diag.get("generated_features", [])
    st = ((rec.get("method_facts") or {}).get("self_training") or {}).get("pseudo_label_check") or {}
    fmt = format_value
    return {
        "method": method, "seed": seed,
        "context KL": fmt(_last(context, "kld"), ".2g") if context else MISSING,
        "context zeros": fmt(_last(context, "zero_share"), ".1%") if context else MISSING,
        "mean abs(mu)": fmt(_last(context, "mu_abs"), ".2g") if context else MISSING,
        "own-class share seen / unseen (chance)": (f"{fmt(_last(generated, 'seen_mean'), '.3f')} / "
                                                   f"{fmt(_last(generated, 'unseen_mean'), '.3f')} "
                                                   f"({fmt(_last(generated, 'chance'), '.3f')})") if generated else MISSING,
        "ST pseudo-labels on background": fmt(st.get("background_share"), ".1%") if st else MISSING,
        "val S/U-mIoU at stage ends": _stage_ends(diag.get("val_trajectory") or []) or MISSING,
        "probe time (s)": fmt(diag.get("seconds"), ".1f") if diag else MISSING,
        "dead mechanisms": "; ".join(dead_mechanisms(rec.get("method_facts"))) or "none",
    }


def diagnostics_table(runs: list[tuple[str, int, dict]]) -> pd.DataFrame | None:
    """One row per run that recorded diagnostics; None when none did."""
    rows = [_row(m, s, rec) for m, s, rec in runs if _diagnostics(rec)]
    return pd.DataFrame(rows) if rows else None


def write_diagnostics(doc, figure: str | None, table: pd.DataFrame | None) -> None:
    """The report subsection (document.py calls it for each dataset and split)."""
    if figure is None and table is None:
        return
    doc.heading(3, "Mechanism diagnostics")
    if figure is not None:
        doc.image(figure, "seen and unseen val mIoU at the block boundaries of the probed stages")
        doc.para("Seen (solid) and unseen (dashed) mIoU on the benchmark's val images, taken before the stage and "
                 "after every block (CaGNet: each alternating block of the finetune; ZS3Net: every log_every "
                 "iterations of the classifier stage; the weak-shot rows: each quarter of every training stage). "
                 "The test number is read after the last point.")
    if table is not None:
        doc.para("From each run's `method_facts.diagnostics`: the contextual module at the end of step 1 (KL, "
                 "share of exactly-zero outputs, mean abs(mu)), the own-class share of generated features at the "
                 "last generator check (nearest real class mean; chance = 1 / classes), where self-training's "
                 "pseudo-labels fall, each probed stage's last val seen/unseen mIoU, the time the probes took, "
                 "and the dead-mechanism rules "
                 "(zsseg_bench/runs/diagnostics.py).")
        doc.table(table)
