"""The `clip` provider: prompts, weight-file checks (no open_clip needed), and the encoder (open_clip only)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers.bad_inputs import Payload
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.embeddings.base import split_embeddings
from zsseg_bench.embeddings.clip import check_text_tower, import_open_clip, text_tower_shapes
from zsseg_bench.embeddings.providers import class_texts
from zsseg_bench.errors import ZsbenchError

NO_DATA = SimpleNamespace(root=None)
TINY = dict(width=8, layers=2, context=5, vocab=11, embed=4)


def _clip(weights, **more):
    return split_embeddings(load_split("pascal5i-f0"), NO_DATA, {"provider": "clip", "weights": str(weights), **more})


def test_prompts_are_the_bare_names_and_others_for_background():
    names = load_split("pascal5i-f0").classes.names
    texts = class_texts(names, "{}", {"background": "others"})
    assert texts[:3] == ["others", "aeroplane", "bicycle"] and len(texts) == 21
    assert class_texts(["background", "wall-other", "potted_plant"], "a photo of a {}.") == [
        "a photo of a background.", "a photo of a wall.", "a photo of a potted plant."]


def test_text_tower_shapes_are_vit_b32s():
    shapes = text_tower_shapes()
    assert len(shapes) == 5 + 12 * 12
    assert shapes["token_embedding.weight"] == (49408, 512) and shapes["positional_embedding"] == (77, 512)
    assert shapes["transformer.resblocks.11.mlp.c_proj.weight"] == (512, 2048)


def test_check_names_the_first_missing_key_or_wrong_shape():
    shapes = text_tower_shapes(**TINY)
    state = {k: torch.zeros(s) for k, s in shapes.items()}
    check_text_tower(state, "w.pt", shapes)
    bad = {**state, "text_projection": torch.zeros(8, 5)}
    with pytest.raises(ZsbenchError, match=r"^w.pt: not CLIP ViT-B/32 text weights: text_projection has shape \(8, 5\)"):
        check_text_tower(bad, "w.pt", shapes)
    del state["ln_final.bias"]
    with pytest.raises(ZsbenchError, match="key 'ln_final.bias' is missing"):
        check_text_tower(state, "w.pt", shapes)


def test_bad_weight_files_are_one_line(tmp_path):
    with pytest.raises(ZsbenchError, match="missing.pt: no such file"):
        _clip(tmp_path / "missing.pt")
    torch.save({"cls_token": torch.zeros(1, 1, 8)}, tmp_path / "dino.pt")
    with pytest.raises(ZsbenchError, match="dino.pt: not CLIP ViT-B/32 text weights: key 'token_embedding.weight'"):
        _clip(tmp_path / "dino.pt")
    torch.save({"state_dict": {"token_embedding.weight": torch.zeros(100, 512)}}, tmp_path / "small.pt")
    with pytest.raises(ZsbenchError, match=r"token_embedding.weight has shape \(100, 512\), ViT-B/32 has \(49408, 512\)"):
        _clip(tmp_path / "small.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "jit.pt")
    with pytest.raises(ZsbenchError, match=r"jit.pt: a TorchScript archive .*torch.jit.load\("):
        _clip(tmp_path / "jit.pt")
    (tmp_path / "text.pt").write_text("not torch")
    with pytest.raises(ZsbenchError, match="text.pt: not a readable CLIP weights file"):
        _clip(tmp_path / "text.pt")


def test_without_open_clip_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip raises ImportError
    with pytest.raises(ZsbenchError, match=r"needs the optional package open_clip_torch: pip install .*\[clip\]"):
        import_open_clip()


@pytest.mark.slow
def test_open_clip_encodes_the_prompts_from_the_users_file(tmp_path):
    try:
        open_clip = import_open_clip()
    except ZsbenchError:
        pytest.skip("open_clip_torch (the 'clip' extra) is not installed")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval()
    keys = text_tower_shapes()
    state = {k: v for k, v in model.state_dict().items() if k in keys}
    torch.save(state, tmp_path / "clip.pt")
    emb = _clip(tmp_path / "clip.pt")
    split = load_split("pascal5i-f0")
    texts = ["others" if n == "background" else n for n in split.eval_names]
    with torch.no_grad():
        expected = model.encode_text(open_clip.get_tokenizer("ViT-B-32-quickgelu")(texts)).numpy()
    assert emb.shape == (21, 512)
    np.testing.assert_allclose(emb, expected, rtol=1e-4, atol=1e-5)  # raw features: normalize none by default
    safetensors = pytest.importorskip("safetensors.torch")
    safetensors.save_file(state, str(tmp_path / "clip.safetensors"))
    np.testing.assert_allclose(_clip(tmp_path / "clip.safetensors"), expected, rtol=1e-4, atol=1e-5)
    gelu = _clip(tmp_path / "clip.pt", model="ViT-B-32")  # the other activation: same file, different vectors
    assert not np.allclose(gelu, expected, atol=1e-3)


def test_a_weights_file_that_would_run_code_is_refused_without_running_it(tmp_path):
    torch.save({"token_embedding.weight": Payload(tmp_path / "marker")}, tmp_path / "evil.pt")
    with pytest.raises(ZsbenchError, match="evil.pt: refused: loading this CLIP weights file would run Python code"):
        _clip(tmp_path / "evil.pt")
    assert not (tmp_path / "marker").exists()
