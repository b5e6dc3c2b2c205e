"""`zsbench bench`: runs on CPU, prints images/s and FLOPs, writes JSON; FLOPs and peaks are right."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.bench import BenchSpec, parse_variants, peak_tflops, run_bench


def test_bench_command_prints_throughput_and_flops(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "spnet", "--crop", "32", "--batch", "2", "--eval-size", "40",
                                      "--repeats", "2", "--warmup", "1", "--variants", "bf16+cl",
                                      "--set", "backbone.width=8", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "img/s" in result.output and "GFLOP" in result.output and f"wrote {out}" in result.output
    data = json.loads(out.read_text())
    assert [r["variant"] for r in data["results"]] == ["bf16+cl"]
    for row in data["results"]:
        assert row["train_images_per_s"] > 0 and row["eval_images_per_s"] > 0
        assert len(row["train_step_s_all"]) == 2 and row["train_peak_fraction"] is None  # CPU: peak unknown
        assert row["train_gflop_per_step"] > 2 * row["eval_gflop_per_step"] * (32 / 40) ** 2  # fwd + bwd
    assert data["command"].startswith("zsbench bench --crop 32 --batch 2")  # spnet is the default
    assert "--variants bf16+cl" in data["command"] and "--set backbone.width=8" in data["command"]


def test_flops_are_those_of_the_network():
    # small-cnn, width 8, D = 32 embedding, K classes; evaluation at 40 px, batch 3: convolutions
    # (2 FLOPs per multiply-add) plus the projection onto the class embeddings.
    spec = BenchSpec(method="spnet", crop=32, batch=2, eval_size=40, eval_batch=3, repeats=1, warmup=0,
                     overrides=["backbone.width=8"], train=False)
    row = run_bench(spec)["results"][0]
    w, d, b, s = 8, 32, 3, 40
    from zsseg_bench.catalog.splits import load_split

    k = load_split("synthetic-9-3").num_classes
    h = s // 2
    macs = (3 * (w // 2) * 9 * s * s + (w // 2) * w * 9 * h * h + 3 * w * w * 9 * h * h + 2 * w * d * 9 * h * h
            + h * h * d * k)
    assert row["eval_gflop_per_step"] * 1e9 == pytest.approx(2 * b * macs)


def test_peak_table():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peak_tflops("NVIDIA H100 PCIe", "fp32") == 51.2
    assert peak_tflops("NVIDIA H200", "tf32") == 494.7
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "bf16") == 312.0
    assert peak_tflops("NVIDIA L4", "bf16") == 121.0
    assert peak_tflops("NVIDIA L40S", "bf16") is None  # not in the table, not mistaken for an L4
    assert peak_tflops("Tesla V100-SXM2-32GB", "bf16") is None


def test_variants_are_parsed_and_checked():
    v = parse_variants("fp32, bf16+cl+compile,tf32")
    assert [x.name for x in v] == ["fp32", "bf16+cl+compile", "tf32"]
    assert v[1].options().precision == "bf16" and v[1].options().channels_last and v[1].options().compile
    assert v[2].options().tf32 and v[2].options().precision == "fp32"
    with pytest.raises(ZsbenchError, match="precision"):
        parse_variants("fp16")
    with pytest.raises(ZsbenchError, match="CUDA"):
        run_bench(BenchSpec(variants=parse_variants("tf32")))


def test_bench_deeplab_multiscale():
    spec = BenchSpec(method="spnet", dataset="voc12", crop=33, batch=1, eval_size=33, repeats=1, warmup=0,
                     overrides=["backbone.blocks=[1,1,1,1]"], embed_dim=16, variants=parse_variants("fp32+cl"))
    row = run_bench(spec)["results"][0]
    assert row["variant"] == "fp32+cl" and row["train_gflop_per_step"] > 0 and row["eval_images_per_s"] > 0
