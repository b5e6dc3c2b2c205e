"""Stored predictions: what a run predicted on a fixed handful of test images.

After evaluation, a run writes its predictions for `eval.keep_predictions` test images
(default in engine/options.py, EvalOptions; 0 turns it off) into its folder, so that figures can be drawn later without the
weights:

    predictions/index.json          which images (index, name, size, sha256 of the label map)
    predictions/<image name>.png    the prediction as a palette PNG of *raw* label ids

Which images: the same for every method under the same dataset, split and seed, so the
columns of a qualitative grid show the same pictures. A generator seeded from
sha256("<dataset>|<split>|<seed>") orders the test set; images that contain an unseen class
are taken first (reading at most 16 x count label maps), the rest in that order. The choice
does not depend on the method or on anything the method does.

Predictions are made like evaluation's "full" mode (scores at the label's resolution, then
argmax) whatever `eval.mode` is, and cover every pixel, including pixels the evaluation
ignores; figures decide what to show there. Images and ground truth are not stored: the
report re-reads them from the dataset (the synthetic benchmark regenerates them exactly) and
checks each label map against the sha256 recorded here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zsseg_bench.report.palette import encode_palette_png, palette_for

__all__ = ["PREDICTIONS_DIR", "choose_images", "store_predictions", "load_stored", "label_digest"]

PREDICTIONS_DIR = "predictions"
FORMAT = 1
_SCAN = 16  # read at most this many label maps per wanted image when looking for unseen classes


def label_digest(label) -> str:
    """sha256 of a raw label map (as int64, C order), to recognise the same ground truth later."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(label), dtype=np.int64).tobytes()).hexdigest()


def choose_images(dataset, split, seed: int, count: int) -> list[int]:
    """Indices of the `count` test images whose predictions a run keeps (sorted)."""
    n = len(dataset)
    count = max(0, min(int(count), n))
    digest = hashlib.sha256(f"{split.dataset}|{split.name}|{seed}".encode()).digest()
    order = np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(n)
    unseen = np.array([split.classes.id_of(c) for c in split.unseen], dtype=np.int64)
    picked: list[int] = []
    if unseen.size:
        for i in order[: count * _SCAN]:
            if len(picked) == count:
                break
            if np.isin(dataset.raw_label(int(i)), unseen).any():
                picked.append(int(i))
    taken = set(picked)
    rest = [int(i) for i in order if int(i) not in taken][: count - len(picked)]
    return sorted(picked + rest)


def _file_name(name: str, used: set) -> str:
    from zsseg_bench.runs.records import _safe

    stem = _safe(str(name).replace("/", "-")) or "image"
    candidate, n = stem, 2
    while candidate in used:
        candidate, n = f"{stem}-{n}", n + 1
    used.add(candidate)
    return candidate + ".png"


@torch.no_grad()
def store_predictions(record, method, ctx, dataset, split) -> dict | None:
    """Predict the chosen test images and write them into the run folder; returns the index."""
    from zsseg_bench.engine.options import autocast

    count = ctx.cfg["eval"]["keep_predictions"]
    if count <= 0:
        return None
    if max(split.classes.ids) > 255:
        ctx.reporter.message(f"predictions not stored: class list {split.classes.name} has label ids above 255, "
                             f"which a palette PNG cannot hold")
        return None
    indices = choose_images(dataset, split, ctx.seed, count)
    palette = palette_for(split.dataset)
    raw_ids = torch.tensor(split.eval_raw_ids, dtype=torch.long, device=ctx.device)
    unseen = np.array([split.classes.id_of(c) for c in split.unseen], dtype=np.int64)
    method.eval()
    entries, used = [], set()
    for batch in ctx.loader(indices, batch_size=1, shuffle=False, dataset=dataset):
        raw_label = batch["label"][0].numpy()
        b = ctx.to_device(batch, ctx.eval_lut)
        size = tuple(b["label"].shape[-2:])
        with autocast(ctx.device, ctx.options.precision):
            scores = method.predict(b["image"], size)
        if tuple(scores.shape[-2:]) != size:
            scores = F.interpolate(scores.float(), size=size, mode="bilinear", align_corners=False)
        prediction = raw_ids[scores.argmax(1)[0]].cpu().numpy()
        file = _file_name(b["name"][0], used)
        record.write_file(f"{PREDICTIONS_DIR}/{file}", encode_palette_png(prediction, palette))
        entries.append({"index": int(b["index"][0]), "name": b["name"][0], "file": file,
                        "height": int(size[0]), "width": int(size[1]), "label_sha256": label_digest(raw_label),
                        "has_unseen": bool(np.isin(raw_label, unseen).any())})
    index = {"format": FORMAT, "dataset": split.dataset, "split": split.name, "seed": int(ctx.seed), "part": "test",
             "values": "raw label ids (each PNG carries the dataset's palette)",
             "selection": f"sha256('{split.dataset}|{split.name}|{ctx.seed}') order, images with unseen classes "
                          f"first", "images": entries}
    record.write_file(f"{PREDICTIONS_DIR}/index.json", (json.dumps(index, indent=2) + "\n").encode())
    return index


def load_stored(run_dir) -> dict | None:
    """predictions/index.json of a run with each entry's absolute `path`, or None if it kept none."""
    folder = Path(run_dir) / PREDICTIONS_DIR
    index_file = folder / "index.json"
    if not index_file.is_file():
        return None
    try:
        index = json.loads(index_file.read_text())
    except json.JSONDecodeError:
        from zsseg_bench.errors import ZsbenchError

        raise ZsbenchError(f"{index_file}: corrupt index of stored predictions") from None
    for entry in index.get("images", []):
        entry["path"] = str(folder / entry["file"])
    return index
