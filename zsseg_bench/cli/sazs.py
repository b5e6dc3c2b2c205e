"""`zsbench sazs eigs`: compute and cache the Laplacian eigen-masks SAZS's fusion reads."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from zsseg_bench.cli.app import CONTEXT, app, command, console, examples

sazs_app = typer.Typer(help="SAZS's eigen-masks (the fss-zeroshot protocol's fusion candidates).",
                       epilog=examples("zsbench sazs eigs --dataset synthetic --out eigs/synthetic-test.npz"),
                       no_args_is_help=True, rich_markup_mode="rich", context_settings=CONTEXT)
app.add_typer(sazs_app, name="sazs")


@command("eigs", group=sazs_app, path=("sazs",),
         epilog=examples("zsbench sazs eigs --dataset synthetic --out eigs/synthetic-test.npz",
                         "zsbench sazs eigs --dataset synthetic --part train --out eigs/synthetic-train.npz",
                         "zsbench sazs eigs --dataset voc12 --data-root ~/data/VOCdevkit --features dino "
                         "--weights ~/dino_deitsmall16_pretrain.pth --out eigs/voc12-test.npz",
                         "zsbench run sazs --split synthetic-5i-f0 --set fusion.eigs=eigs/synthetic-test.npz"))
def eigs(
    dataset: str = typer.Option("synthetic", "--dataset", help="Dataset name (zsbench ls datasets)."),
    out: Path = typer.Option(..., "--out", "-o", help="The .npz file to write (read by fusion.eigs)."),
    part: str = typer.Option("test", "--part", help="train or test."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset root (real datasets)."),
    k: int = typer.Option(5, "--k", min=1, help="Eigen-masks per image."),
    stride: int = typer.Option(4, "--stride", min=1, help="Feature grid stride of the colour/position features."),
    batch: int = typer.Option(32, "--batch", min=1, help="Images per batched eigendecomposition."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N images."),
    features: str = typer.Option("colour-position", "--features",
                                 help="colour-position, or dino: the last-layer keys of a DINO ViT (--weights)."),
    weights: Path | None = typer.Option(None, "--weights", help="The DINO ViT checkpoint (with --features dino)."),
    heads: int | None = typer.Option(None, "--heads", min=1, help="DINO ViT heads (default: width / 64)."),
):
    """Top-K eigen-masks of every image's label-free features, cached for fusion: colour and position,
    or a DINO ViT's last-layer keys (Deep Spectral Methods' affinity)."""
    from zsseg_bench.datasets import build_dataset
    from zsseg_bench.errors import ZsbenchError
    from zsseg_bench.protocols.eigsource import compute_masks, save_masks

    if out.suffix != ".npz":
        raise ZsbenchError(f"--out {out}: the cache is an .npz file; name it e.g. {out.with_suffix('.npz')}")
    if features not in ("colour-position", "dino"):
        raise ZsbenchError(f"--features {features}: use colour-position or dino")
    if (features == "dino") != (weights is not None):
        raise ZsbenchError("--features dino needs --weights PATH (a DINO ViT checkpoint), and --weights is only "
                           "read with --features dino")
    meta = {"dataset": dataset, "part": part, "k": k, "features": features}
    extractor = None
    if features == "dino":
        from zsseg_bench.protocols.dino import DinoKeys, load_dino

        model = load_dino(str(weights), heads)
        extractor = DinoKeys(model)
        meta.update(weights=str(weights), arch=model.arch, affinity="clipped cosine of last-layer keys")
    else:
        meta["stride"] = stride
    data = build_dataset(dataset, part, data_root, {})
    start = time.perf_counter()
    names, masks = compute_masks(data, k=k, stride=stride, batch=batch, limit=limit, features=extractor)
    seconds = time.perf_counter() - start
    save_masks(out, names, masks, meta)
    console.print(f"{len(names)} images, {k} eigen-masks each, in {seconds:.1f} s "
                  f"({len(names) / max(seconds, 1e-9):.1f} images/s); wrote {out}")
