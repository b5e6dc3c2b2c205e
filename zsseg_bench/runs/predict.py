"""Segment any image with a trained run (`zsbench predict`).

A run folder holds everything needed: run.json (method, dataset, split), and ckpt/final.pt
(weights and the fully resolved config). The run is prepared again as training prepared it
(prepare.py), from the checkpoint's implementation and config, with the split's classes (seen
and unseen) and their embeddings but no datasets; the weights are loaded strictly. The
config's engine options apply as in training and evaluation (e.g. `engine.precision: bf16`
predicts under bf16 autocast).

Input images may have any size and any mode Pillow reads: grayscale is repeated over three
channels, transparency is composited over white (as a viewer shows it), 16-bit and float
images are scaled to 0..255, and EXIF orientation is applied. Before the model sees it, the
image is resized so that its shorter side equals `input_size`, keeping its aspect ratio
(the fully convolutional models accept any shape). The default is the size of the synthetic
benchmark's images for synthetic runs (64: its objects are 16 to 32 px wide, so a large
picture at native size would be far outside what the model was trained on) and the native
size for real datasets (photos are already at the scale those models train at); 0 means
native. Scores are upsampled back to the original size
before the argmax, as in evaluation, so the label map matches the input pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsseg_bench.errors import ZsbenchError

__all__ = ["TrainedRun", "load_trained", "read_image", "predict_files", "MIN_SIDE"]

MIN_SIDE = 16  # smaller inputs are upsampled to this before the model (its output stride needs room)


@dataclass
class TrainedRun:
    path: Path
    run: dict
    split: object
    method: object
    cfg: dict
    device: object
    ctx: object  # the run context, for its input normalisation and engine options

    @property
    def dataset(self) -> str:
        return self.run["dataset"]["name"]

    def default_input_size(self) -> int:
        """Shorter side the model is run at by default (0 = native): the synthetic images' size."""
        from zsseg_bench.datasets import dataset_info

        if dataset_info(self.dataset).synthetic:
            return int((self.run["dataset"].get("options") or {}).get("size", 64))
        return 0  # real datasets: photos are already at the scale the model was trained on

    def segment(self, image: np.ndarray, input_size: int | None = None) -> np.ndarray:
        """[H, W, 3] uint8 RGB -> [H, W] raw label ids over the split's classes (seen and unseen)."""
        import torch
        import torch.nn.functional as F

        from zsseg_bench.engine.options import autocast

        size = self.default_input_size() if input_size is None else int(input_size)
        h, w = image.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        target = (h, w)
        scale = size / min(h, w) if size > 0 else 1.0
        if min(h, w) * scale < MIN_SIDE:
            scale = MIN_SIDE / min(h, w)
        if scale != 1.0:
            target = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(x.float(), size=target, mode="bilinear", align_corners=False, antialias=scale < 1)
            x = x.round().clamp(0, 255).to(torch.uint8)
        batch = {"image": x, "label": torch.full((1, *target), self.split.ignore_index, dtype=torch.long),
                 "index": [0], "name": ["input"]}
        b = self.ctx.to_device(batch, self.ctx.eval_lut)
        with torch.no_grad(), autocast(self.device, self.ctx.options.precision):
            scores = self.method.predict(b["image"], target)
        scores = scores.float()
        if tuple(scores.shape[-2:]) != (h, w):
            scores = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False)
        raw_ids = np.asarray(self.split.eval_raw_ids, dtype=np.int64)
        return raw_ids[scores.argmax(1)[0].cpu().numpy()]


def load_trained(run_dir, device: str = "cpu") -> TrainedRun:
    """Rebuild the trained method of a run folder from its checkpoint."""
    from zsseg_bench.catalog.splits import load_split
    from zsseg_bench.engine.checkpoint_format import load_checkpoint, load_state_strict
    from zsseg_bench.runs.prepare import RunRequest, prepare_run, stored_config
    from zsseg_bench.runs.records import load_record

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise ZsbenchError(f"{run_dir}: not a run folder (no run.json); pass a folder made by 'zsbench run'")
    run = load_record(run_dir)
    ckpt = run_dir / "ckpt" / "final.pt"
    if not ckpt.is_file():
        why = f"the run's status is {run.get('status')!r}" if run.get("status") != "ok" else \
            "it was run with save_weights: false or the weights were not copied with the run folder"
        raise ZsbenchError(f"{ckpt}: no trained weights ({why}); re-run the method with 'zsbench run'")
    payload = load_checkpoint(ckpt, method_name=run["method"], split=load_split(run["split"]["name"]))
    request = RunRequest(method=run["method"], dataset=run["dataset"]["name"], split=run["split"]["name"],
                         seed=int(run.get("seed", 0)), device=device, data_root=run["dataset"].get("root"),
                         config=stored_config(payload["config"], run))
    prepared = prepare_run(request, data=False, training=False, impl=payload["impl"])
    load_state_strict(prepared.method, payload["state_dict"], str(ckpt))
    prepared.method.eval()
    return TrainedRun(path=run_dir, run=run, split=prepared.split, method=prepared.method, cfg=prepared.cfg,
                      device=prepared.device, ctx=prepared.context())


def read_image(path) -> np.ndarray:
    """Any image file Pillow reads -> [H, W, 3] uint8 RGB; a clear one-line error otherwise."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise ZsbenchError(f"{path}: no such image file")
    if not path.is_file():
        raise ZsbenchError(f"{path}: not a file; pass image files (PNG, JPEG, ...)")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except Image.DecompressionBombError:
        raise ZsbenchError(f"{path}: its header claims more pixels than Pillow opens safely (a decompression bomb?); "
                           f"resize the image first") from None
    except UnidentifiedImageError:
        raise ZsbenchError(f"{path}: not an image Pillow can read; pass a PNG, JPEG, BMP, TIFF or WebP file") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ZsbenchError(f"{path}: unreadable image ({type(exc).__name__}: {' '.join(str(exc).split())}); "
                           f"re-save or re-download it") from None


def _to_rgb(image) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float: stretch to 0..255
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        values = (values - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(values)
        image = Image.fromarray(values.round().astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"empty image of shape {rgb.shape}")
    return rgb


def predict_files(run_dir, images, out, *, input_size: int | None = None, device: str = "cpu") -> list[dict]:
    """Segment image files with a trained run: <out>/<stem>_pred.png (palette PNG of raw label
    ids, the input's size) and <out>/<stem>_overlay.png (blend and legend). Every image is read
    before anything is written, so a bad file leaves nothing behind."""
    from zsseg_bench.report.grids import overlay_with_legend
    from zsseg_bench.report.palette import encode_palette_png, palette_for
    from zsseg_bench.runs.records import _atomic_write

    if input_size is not None and input_size < 0:
        raise ZsbenchError(f"--input-size {input_size}: must be 0 (native size) or a positive number of pixels")
    paths = [Path(p) for p in images]
    if not paths:
        raise ZsbenchError("no images given; pass one or more image files")
    pictures = [read_image(p) for p in paths]
    trained = load_trained(run_dir, device)
    split = trained.split
    if max(split.classes.ids) > 255:
        raise ZsbenchError(f"class list {split.classes.name} has label ids above 255, which a palette PNG cannot hold")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    palette = palette_for(trained.dataset)
    names = dict(zip(split.eval_raw_ids, split.eval_names))
    unseen_ids = [split.classes.id_of(c) for c in split.unseen]
    inputs = {p.resolve() for p in paths}
    results, used = [], set()
    for path, image in zip(paths, pictures):
        stem, n = path.stem, 2
        while stem in used:
            stem, n = f"{path.stem}-{n}", n + 1
        used.add(stem)
        pred_path, overlay_path = out / f"{stem}_pred.png", out / f"{stem}_overlay.png"
        if {pred_path.resolve(), overlay_path.resolve()} & inputs:
            raise ZsbenchError(f"{out}: writing {pred_path.name} would overwrite an input image; choose another -o")
        label = trained.segment(image, input_size)
        _atomic_write(pred_path, encode_palette_png(label, palette))
        overlay = overlay_with_legend(image, label, palette, names, unseen_ids)
        import io

        buffer = io.BytesIO()
        overlay.save(buffer, format="PNG")
        _atomic_write(overlay_path, buffer.getvalue())
        ids, counts = np.unique(label, return_counts=True)
        share = sorted(((names[int(i)], c / label.size) for i, c in zip(ids, counts)), key=lambda t: -t[1])
        results.append({"image": path, "trained_on": trained.dataset, "height": image.shape[0],
                        "width": image.shape[1], "prediction": pred_path,
                        "overlay": overlay_path, "classes": share,
                        "unseen_found": [names[int(i)] for i in ids if int(i) in set(unseen_ids)]})
    return results
