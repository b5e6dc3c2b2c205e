"""CLIP text features (`embeddings.provider: clip`): SAZS's frozen ViT-B/32 text encoder via open_clip.

SAZS embeds the prompt pair ["others", <class name>] with OpenAI CLIP ViT-B/32's `encode_text`:
bare class names, no template, and the raw text features (no normalisation). This provider
returns one such vector per class: the class name as words in `embeddings.template` (default
"{}", the bare name), except the classes named in `embeddings.texts`, whose text is used as is
(default: background -> "others", so the split's background row is SAZS's "others" prompt). Its
default `normalize` is `none`, as the official code (a card can still ask for `l2`).

Weights come only from the user's file, `embeddings.weights`; nothing is downloaded. Accepted: a
state dict saved with `torch.save` (read by engine/torchfile.py, tensors only) or a `.safetensors`
file (open_clip's hub files; needs the `safetensors` package). OpenAI's own `ViT-B-32.pt` is a
TorchScript archive, and loading one runs the code inside it, so it is refused with a one-line
conversion command. The text tower's keys and shapes are checked against ViT-B/32 before open_clip
is imported, so a wrong file is one line even where open_clip is not installed.

`embeddings.model`: `ViT-B-32-quickgelu` (default; OpenAI's weights, which SAZS used, were trained
with QuickGELU) or `ViT-B-32` (GELU, e.g. LAION's weights). Pick the one the weights were trained
with: the other loads without error and gives different vectors.

open_clip (optional extra `clip`) imports torchvision. Where torchvision's wheel is a CUDA build on
a CPU-only torch, `import torchvision` fails ("operator torchvision::nms does not exist") while
registering its C++ ops; the text path uses none of them. Only after that exact failure are the two
op-registration modules replaced by empty ones and the import retried.
"""

from __future__ import annotations

import logging
import sys
import types
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from zsseg_bench.catalog.schema import declare_options
from zsseg_bench.embeddings.base import EMBEDDINGS, EmbeddingOptions
from zsseg_bench.embeddings.providers import class_texts, rows_by_label_id
from zsseg_bench.errors import ZsbenchError

__all__ = ["ClipOptions", "text_tower_shapes", "check_text_tower", "read_clip_weights", "import_open_clip"]

INSTALL = 'pip install torch==2.13.0 -e ".[clip]" (in one command)'


class ClipOptions(EmbeddingOptions):
    weights: str = Field(description="pass --set embeddings.weights=PATH: CLIP ViT-B/32 weights (a state dict saved "
                                     "with torch.save, or open_clip's .safetensors)")
    model: Literal["ViT-B-32-quickgelu", "ViT-B-32"] = "ViT-B-32-quickgelu"
    template: str = "{}"  # the text embedded for a class name (SAZS: the bare name)
    texts: dict[str, str] = {"background": "others"}  # class name -> its text, used as is


def text_tower_shapes(width: int = 512, layers: int = 12, context: int = 77, vocab: int = 49408,
                      embed: int = 512) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a CLIP text tower (OpenAI's and open_clip's names); defaults are ViT-B/32's."""
    shapes = {"token_embedding.weight": (vocab, width), "positional_embedding": (context, width),
              "ln_final.weight": (width,), "ln_final.bias": (width,), "text_projection": (width, embed)}
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        shapes.update({p + "ln_1.weight": (width,), p + "ln_1.bias": (width,), p + "ln_2.weight": (width,),
                       p + "ln_2.bias": (width,), p + "attn.in_proj_weight": (3 * width, width),
                       p + "attn.in_proj_bias": (3 * width,), p + "attn.out_proj.weight": (width, width),
                       p + "attn.out_proj.bias": (width,), p + "mlp.c_fc.weight": (4 * width, width),
                       p + "mlp.c_fc.bias": (4 * width,), p + "mlp.c_proj.weight": (width, 4 * width),
                       p + "mlp.c_proj.bias": (width,)})
    return shapes


def check_text_tower(state: dict, where: str, shapes: dict[str, tuple[int, ...]] | None = None) -> None:
    """One error line naming the first missing key or wrong shape of the text tower."""
    shapes = text_tower_shapes() if shapes is None else shapes
    for key, shape in shapes.items():
        if key not in state:
            raise ZsbenchError(f"{where}: not CLIP ViT-B/32 text weights: key {key!r} is missing "
                               f"(first keys: {', '.join(list(state)[:3]) or 'none'})")
        got = tuple(getattr(state[key], "shape", ()))
        if got != shape:
            raise ZsbenchError(f"{where}: not CLIP ViT-B/32 text weights: {key} has shape {got}, ViT-B/32 has {shape}")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def read_clip_weights(path: Path) -> dict:
    """The state dict in `path` (torch.save file or .safetensors), read without running code from it."""
    from zsseg_bench.engine.torchfile import load_torch_file, state_dict_of

    if not path.is_file():
        raise ZsbenchError(f"embeddings.weights {path}: no such file; pass the CLIP ViT-B/32 weights file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ZsbenchError(f"{path}: reading .safetensors needs the safetensors package: {INSTALL}") from None
        try:
            state = load_file(str(path))
        except Exception as exc:  # noqa: BLE001  any unreadable file is the same user error
            raise ZsbenchError(f"{path}: not a readable .safetensors file ({type(exc).__name__})") from None
    elif _is_torchscript(path):
        raise ZsbenchError(f"{path}: a TorchScript archive (like OpenAI's ViT-B-32.pt); loading it runs code from it. "
                           f"If you trust it, convert it once: python -c \"import torch; torch.save(torch.jit.load("
                           f"'{path}', map_location='cpu').state_dict(), '{path}.state.pt')\" and pass {path.name}.state.pt")
    else:
        state = load_torch_file(path, "CLIP weights file")
    return state_dict_of(state, str(path), "a state dict of CLIP weights")


def import_open_clip():
    """open_clip, importable where torchvision's C++ ops do not load (see the module docstring)."""
    try:
        import open_clip
    except ImportError:
        raise ZsbenchError(f"embedding provider 'clip' needs the optional package open_clip_torch: {INSTALL}") from None
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith(("torchvision.", "open_clip"))]:
            del sys.modules[name]
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
        import open_clip
    return open_clip


def encode_texts(state: dict, model_name: str, texts: list[str]) -> np.ndarray:
    """[len(texts), 512] float32: open_clip's `encode_text` with the text tower of `state`."""
    import torch

    open_clip = import_open_clip()
    logging.disable(logging.WARNING)  # open_clip warns that no pretrained weights were downloaded: by design
    try:
        model = open_clip.create_model(model_name, pretrained=None)
    finally:
        logging.disable(logging.NOTSET)
    keys = text_tower_shapes()
    model.load_state_dict({k: v for k, v in state.items() if k in keys}, strict=False)
    model.eval()
    with torch.no_grad():
        return model.encode_text(open_clip.get_tokenizer(model_name)(texts)).float().numpy()


@EMBEDDINGS.register("clip")
@declare_options(ClipOptions)
def clip_text(split, dataset, cfg: dict) -> np.ndarray:
    """Class names embedded by CLIP ViT-B/32's text encoder from the user's weights (optional extra)."""
    path = Path(str(cfg["weights"])).expanduser()
    state = read_clip_weights(path)
    check_text_tower(state, f"embeddings.weights {path}")
    return rows_by_label_id(split.classes, encode_texts(state, cfg["model"], class_texts(
        split.classes.names, cfg["template"], cfg["texts"])))


clip_text.default_normalize = "none"
