"""benchmarks/gpu.sh runs end to end (on CPU at toy sizes) and writes its RESULTS.md section."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.settings import REPO


@pytest.mark.slow
def test_gpu_script_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "gpu.md"
    done = subprocess.run([str(REPO / "benchmarks" / "gpu.sh"), "--device", "cpu", "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    for heading in ("## GPU figures: `benchmarks/gpu.sh` on ", "### Training step",
                    "### Evaluation beside the backbone's forward", "### Speed-ups", "Machine: "):
        assert heading in text
    assert "| spnet | fp32 |" in text and "| cagnet-pi | fp32 |" in text
    assert "| content MMD," in text and "| confusion matrix, 19 classes," in text
    assert out.with_suffix(".json").is_file()


def test_gpu_script_refuses_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([str(REPO / "benchmarks" / "gpu.sh"), "--out", str(tmp_path / "x.md")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: --device cuda: no CUDA device")
    assert not (tmp_path / "x.md").exists()
