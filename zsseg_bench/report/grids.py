"""Pictures of label maps: qualitative grids for reports and overlays for `zsbench predict`.

A grid has one row per image and the columns image | ground truth | one per method, every
label map in the dataset's palette (palette.py), the regions of unseen classes outlined
(white, with a black inner line so the outline shows on any colour), and a legend naming
every class, unseen ones marked. By default a prediction column shows the prediction only
where the evaluation scores it: pixels that the ground truth marks as ignored or as an
excluded class (the background of the SPNet/CaGNet VOC protocol, which no method predicts)
are painted as in the ground truth. `mask_unscored=False` shows the raw prediction instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsseg_bench.report.palette import boundary, colorize, with_not_scored
from zsseg_bench.report.tables import format_value

__all__ = ["label_picture", "qualitative_grid", "overlay_with_legend", "display_shape",
           "resize_label_at_corners"]

CELL = 192  # target longest side of a grid cell, in pixels


def display_shape(h: int, w: int, target: int = CELL) -> tuple[int, int]:
    """Shape a label map is drawn at: small maps grow by an integer factor, large ones shrink."""
    longest = max(h, w)
    if longest <= target:
        f = max(1, target // longest)
        return h * f, w * f
    return max(1, round(h * target / longest)), max(1, round(w * target / longest))


def resize_label_at_corners(label: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map, sampled at the output pixels' top-left corners
    (source row floor(i * H / H')): integer enlargements repeat each pixel exactly."""
    h, w = label.shape
    rows = (np.arange(shape[0]) * h // shape[0]).clip(0, h - 1)
    cols = (np.arange(shape[1]) * w // shape[1]).clip(0, w - 1)
    return label[rows][:, cols]


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == tuple(shape):
        return image
    h, w = image.shape[:2]
    method = Image.NEAREST if shape[0] >= h else Image.LANCZOS  # keep small images crisp when enlarged
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), method))


def _outline(rgb: np.ndarray, label: np.ndarray, ids) -> np.ndarray:
    out = rgb.copy()
    for i in ids:
        mask = label == i
        if not mask.any():
            continue
        edge = boundary(mask)
        inner = boundary(mask & ~edge)
        out[edge] = (255, 255, 255)
        out[inner] = (0, 0, 0)
    return out


def label_picture(label: np.ndarray, palette: np.ndarray, unseen_ids=(), shape: tuple[int, int] | None = None
                  ) -> np.ndarray:
    """[H, W] raw ids -> [h, w, 3] RGB at `shape`, unseen regions outlined."""
    label = np.asarray(label)
    if shape is not None and tuple(shape) != label.shape:
        label = resize_label_at_corners(label, shape)
    return _outline(colorize(label, palette), label, unseen_ids)


def qualitative_grid(rows: list[dict], columns: list[str], classes: list[tuple[int, str, bool]],
                     palette: np.ndarray, path: Path, *, unscored_lut: np.ndarray | None = None,
                     ignore_index: int = 255, mask_unscored: bool = True, others=(), title: str = "") -> Path:
    """Draw and save a grid (PNG).

    rows: {"name": str, "image": [H, W, 3] uint8 or None, "gt": [H, W] raw ids or None,
           "preds": {column: [H, W] raw ids or None}}
    classes: (raw id, name, is_unseen) of the split's evaluation classes, in order.
    others: (raw id, legend label) of ground-truth values that are not scored (excluded, void);
            each gets a legend entry when it appears.
    unscored_lut: raw id -> True where the evaluation does not score that ground-truth value.
    """
    from zsseg_bench.report.plots import _pyplot

    plt = _pyplot()
    unseen_ids = [i for i, _, u in classes if u]
    unscored_ids = [*(np.flatnonzero(unscored_lut) if unscored_lut is not None else []), *(i for i, _ in others),
                    ignore_index]
    palette, _ = with_not_scored(palette, [i for i, _, _ in classes], unscored_ids)
    n_cols = 2 + len(columns)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.75 * n_cols, 1.75 * len(rows) + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        unscored = None
        gt = row.get("gt")
        if gt is not None and unscored_lut is not None:
            unscored = unscored_lut[np.clip(gt, 0, len(unscored_lut) - 1)] | (gt == ignore_index)
        masked = unscored if mask_unscored and unscored is not None and unscored.any() else None
        _grid_row(axes[r], row, columns, palette, unseen_ids, masked, titled=r == 0)
    _grid_legend(fig, rows, classes, others, palette, n_cols)
    note = "unseen classes outlined in white; "
    note += "predictions shown where scored" if mask_unscored else "raw predictions (every pixel)"
    fig.suptitle((title + "\n" if title else "") + note, fontsize=8.5)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})  # "tight" takes in the legend
    plt.close(fig)
    return path


def _grid_row(axes, row: dict, columns: list[str], palette: np.ndarray, unseen_ids, masked: np.ndarray | None,
              titled: bool) -> None:
    """One image's cells: image | ground truth | each column's prediction. Where `masked` is set
    (pixels the evaluation does not score), a prediction shows the ground truth instead."""
    gt = row.get("gt")
    ref = gt if gt is not None else next((p for p in row["preds"].values() if p is not None), None)
    shape = display_shape(*ref.shape) if ref is not None else (CELL, CELL)
    cells = [("image", row.get("image")), ("ground truth", gt)] + [(c, row["preds"].get(c)) for c in columns]
    for ax, (name, content) in zip(axes, cells):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if titled:
            ax.set_title(name, fontsize=8.5)
        if content is None:
            ax.text(0.5, 0.5, "not available", ha="center", va="center", fontsize=7, color="0.5",
                    transform=ax.transAxes)
            continue
        if name == "image":
            picture = resize_image(content, shape)
        else:
            label = np.asarray(content)
            if name != "ground truth" and masked is not None:
                label = np.where(masked, gt, label)
            picture = label_picture(label, palette, unseen_ids, shape)
        ax.imshow(picture, interpolation="nearest")
    axes[0].set_ylabel(str(row["name"]).split("/")[-1], fontsize=7)


def _grid_legend(fig, rows: list[dict], classes, others, palette: np.ndarray, n_cols: int) -> None:
    """Every evaluation class (unseen ones marked, in red), then the unscored values that appear."""
    from matplotlib.patches import Patch

    from zsseg_bench.report.plots import UNSEEN_RED

    handles = [Patch(facecolor=palette[i] / 255.0, edgecolor="0.3", lw=0.4,
                     label=name + (" (unseen)" if u else "")) for i, name, u in classes]
    for i, text in others:
        if any(r.get("gt") is not None and (r["gt"] == i).any() for r in rows):
            handles.append(Patch(facecolor=palette[i % len(palette)] / 255.0, edgecolor="0.3", lw=0.4, label=text))
    ncol = max(1, min(len(handles), int(1.75 * n_cols / 1.45)))  # about 1.45 inch per legend entry
    legend = fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=7,
                        frameon=False)
    for text, (_, _, u) in zip(legend.get_texts(), classes):
        if u:
            text.set_color(UNSEEN_RED)
            text.set_fontweight("bold")


def _font(size: int):
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def overlay_with_legend(image: np.ndarray, label: np.ndarray, palette: np.ndarray, names: dict[int, str],
                        unseen_ids=(), alpha: float = 0.55):
    """The image with the label map blended over it, unseen regions outlined, and a legend of the
    classes present (share of pixels; unseen marked). Images under 256 px are enlarged (nearest)."""
    from PIL import Image, ImageDraw

    h, w = label.shape
    f = max(1, -(-256 // min(h, w))) if min(h, w) < 256 else 1
    shape = (h * f, w * f)
    big_label = resize_label_at_corners(label, shape)
    big_image = resize_image(image, shape).astype(np.float32)
    blend = (1 - alpha) * big_image + alpha * colorize(big_label, palette).astype(np.float32)
    picture = _outline(blend.round().clip(0, 255).astype(np.uint8), big_label, unseen_ids)
    ids, counts = np.unique(label, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    size = max(12, min(22, shape[0] // 28))
    font = _font(size)
    line = int(size * 1.6)
    entries = [(int(ids[k]), counts[k] / label.size) for k in order]
    legend_w = max(int(size * 14), 180)
    height = max(shape[0], line * (len(entries) + 2))
    canvas = Image.new("RGB", (shape[1] + legend_w, height), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = shape[1] + size // 2
    draw.text((x0, size // 2), "predicted classes", fill=(0, 0, 0), font=font)
    for n, (i, share) in enumerate(entries, 1):
        y = size // 2 + n * line
        draw.rectangle([x0, y, x0 + size, y + size], fill=tuple(int(c) for c in palette[i]), outline=(80, 80, 80))
        unseen = i in set(unseen_ids)
        text = f"{names.get(i, str(i))} {format_value(share, '.1%') if share >= 0.001 else '<0.1%'}"
        text += " (unseen)" if unseen else ""
        draw.text((x0 + int(size * 1.5), y - 1), text, fill=(192, 57, 43) if unseen else (0, 0, 0), font=font)
    return canvas
