"""Published numbers: well-formed, hIoU consistent with S-mIoU/U-mIoU, faithful to the source documents."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from zsseg_bench.catalog.published import lookup, published_frame
from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import METRIC_NAMES, harmonic


def test_every_row_has_source_and_fraction_values():
    frame = published_frame()
    assert len(frame) == 75
    assert frame["source"].notna().all() and frame["table"].notna().all()
    values = frame[list(METRIC_NAMES)].stack().dropna()
    assert len(values) > 500 and ((values >= 0) & (values <= 1)).all()


def hiou_disagreements(frame: pd.DataFrame, digits: int = 4) -> list[str]:
    """Rows whose printed hIoU differs from 2SU/(S+U) by more than rounding to `digits` allows.

    S, U and hIoU are each printed rounded (error up to half a unit in the last place); the
    bound propagates the S and U errors through dH/dS = 2U^2/(S+U)^2, dH/dU = 2S^2/(S+U)^2."""
    half = 0.5 * 10 ** -digits
    bad = []
    for _, row in frame.dropna(subset=["hIoU", "S-mIoU", "U-mIoU"]).iterrows():
        s, u = row["S-mIoU"], row["U-mIoU"]
        bound = half * (1 + (2 * (u * u + s * s) / (s + u) ** 2 if s + u > 0 else 0)) + 1e-9
        if abs(harmonic(s, u) - row["hIoU"]) > bound:
            bad.append(f"{row['source']}:{row['dataset']}:{row['method']}")
    return bad


# Printed hIoU that 2SU/(S+U) of the printed S-mIoU and U-mIoU cannot produce, in every source
# that prints them (they copy one table): VOC SPNet-c prints 0.2610, the formula gives 0.2604;
# VOC CaGNet+ST prints 0.4366, the formula gives 0.4375; COCO-Stuff SPNet prints 0.0140, the
# formula gives 0.0137. Kept as printed; see results/published/README.md. A new transcription
# error would add to this list.
KNOWN_HIOU_DISAGREEMENTS = sorted(f"{src}:{ds}:{m}" for src in ("cagnet-readme", "cagnetv2-readme", "thesis-slides")
                                  for ds, m in (("voc12", "spnet-c"), ("voc12", "cagnet-pi+st"),
                                                ("cocostuff", "spnet")))


def test_hiou_recomputed_from_seen_and_unseen():
    assert sorted(hiou_disagreements(published_frame())) == KNOWN_HIOU_DISAGREEMENTS


def test_hiou_check_catches_a_typo():
    frame = published_frame().copy()
    frame.loc[frame.index[0], "hIoU"] = 0.1234
    assert len(hiou_disagreements(frame)) == len(KNOWN_HIOU_DISAGREEMENTS) + 1


def test_disagreeing_sources_are_kept_side_by_side():
    frame = published_frame(dataset="context", method="cagnet-pi")
    pa = dict(zip(frame["source"], frame["PA"]))
    assert pa["cagnet-readme"] == 0.5924 and pa["cagnetv2-readme"] == 0.5975


def test_lookup_priority_and_source():
    assert lookup("cagnet-pi", "context", "context33-29-4")["source"] == "cagnet-readme"
    assert lookup("cagnet-pi", "context", "context33-29-4", "thesis-slides")["PA"] == 0.5975
    assert lookup("cagnet-pa", "voc12", "voc12-15-5")["source"] == "cagnetv2-readme"
    assert lookup("spnet", "synthetic", "synthetic-9-3") is None


def test_published_cli_filters():
    result = CliRunner().invoke(app, ["published", "--dataset", "voc12", "--source", "cagnetv2-readme"])
    assert result.exit_code == 0 and "0.4528" in result.output and "cagnet-pa+st" in result.output
    result = CliRunner().invoke(app, ["published", "--dataset", "vco12"])
    assert result.exit_code == 2 and "did you mean 'voc12'" in result.output


# ---- faithful to the source documents (when ../shared is present) -----------------------------

def _pipe_rows(text: str):
    for line in text.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and re.fullmatch(r"[\d.]+", cells[1] or "x"):
            yield cells


def test_matches_cagnet_readmes(shared_dir):
    frame = published_frame()
    for seed, source in (("001_3ab97468f49d8ea2.txt", "cagnet-readme"), ("000_4fa82afe653b5230.txt", "cagnetv2-readme")):
        text = (shared_dir / "seeds" / seed).read_text()
        rows = frame[frame.source == source]
        printed = {tuple(float(v) for v in cells[1:7]) for cells in _pipe_rows(text)}
        ours = {tuple(r) for r in rows[["hIoU", "mIoU", "PA", "MA", "S-mIoU", "U-mIoU"]].to_numpy()}
        assert ours == printed, source
        assert len(rows) == len(list(_pipe_rows(text)))


def test_matches_thesis_slides(shared_dir):
    text = (shared_dir / "seeds" / "004_8b14dfead93ee31b.txt").read_text()
    printed = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("→", "").split("\t") if c.strip()]
        if len(cells) == 11:
            printed.add(tuple(float(v) for v in cells[1:]))
    frame = published_frame(source="thesis-slides")
    order = ["hIoU", "mIoU", "PA", "MA", "S-mIoU", "S-PA", "S-MA", "U-mIoU", "U-PA", "U-MA"]
    ours = {tuple(r) for r in frame[order].to_numpy()}
    assert ours == printed and len(frame) == 21


def test_matches_sazs_readme(shared_dir):
    text = (shared_dir / "seeds" / "002_8032afeb496ee2fa.txt").read_text()
    printed = sorted(float(m) / 100 for m in re.findall(r"\| (\d\d\.\d) \| download", text))
    ours = sorted(published_frame(source="sazs-readme")["mIoU"].round(4))
    np.testing.assert_allclose(ours, printed)
