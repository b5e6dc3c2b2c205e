"""docs/adding.md runs as written: each section's files are saved in an empty folder and its
`bash` blocks run there, through the `zsbench` entry point, with no change to the package."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.S | re.M)


def sections() -> dict[str, str]:
    """'1'/'2'/'3' -> the text of that numbered '## N.' section."""
    parts = re.split(r"^## (\d)\. ", DOC.read_text(), flags=re.M)
    return {number: body for number, body in zip(parts[1::2], parts[2::2])}


def blocks(section: str) -> tuple[dict[str, str], list[str]]:
    """(file name -> content of each block whose info string says file=NAME, bash scripts)."""
    files, scripts = {}, []
    for lang, info, body in FENCE.findall(section):
        name = re.search(r"\bfile=(\S+)", info)
        if name:
            files[name.group(1)] = body
        elif lang == "bash":
            scripts.append(body)
    return files, scripts


def shell_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a user's shell: `zsbench` and `python` are this interpreter's, and none
    of the variables the doc sets is inherited."""
    bin_dir.mkdir()
    (bin_dir / "zsbench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m zsseg_bench.cli "$@"\n')
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "ZSBENCH_PLUGINS", "ZSBENCH_CARDS", "ZSBENCH_ROOT", "ZSBENCH_RUNS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    return env


def run_section(number: str, tmp_path: Path) -> list[dict]:
    """Write the section's files into a fresh folder, run its commands; the run records made."""
    files, scripts = blocks(sections()[number])
    assert files and scripts, f"section {number} of {DOC} shows no file or no command"
    work = tmp_path / "work"
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    env = shell_env(tmp_path / "bin")
    for script in scripts:
        done = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{script}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return [json.loads(p.read_text()) for p in sorted(work.glob("runs/*/*/run.json"))]


def test_the_doc_has_three_sections_each_with_files_and_commands():
    found = sections()
    assert sorted(found) == ["1", "2", "3"]
    for number, body in found.items():
        files, scripts = blocks(body)
        assert files and scripts, f"section {number}"


@pytest.mark.slow
def test_a_split_file_outside_the_package_is_trained_on(tmp_path):
    (record,) = run_section("1", tmp_path)
    assert record["status"] == "ok"
    assert record["split"]["name"] == "synthetic-8-4"
    assert record["method"] == "spnet"


@pytest.mark.slow
def test_a_plugin_method_and_its_card_train(tmp_path):
    (record,) = run_section("2", tmp_path)
    assert record["status"] == "ok"
    assert (record["method"], record["impl"]) == ("nearest", "nearest-embedding")
    assert record["card_file"] == "nearest.yaml"  # from ZSBENCH_CARDS: methods/ has no such card
    assert not list(Path(__file__).resolve().parents[1].glob("methods/*/nearest.yaml"))


@pytest.mark.slow
def test_a_plugin_dataset_is_checked_and_trained_on(tmp_path):
    (record,) = run_section("3", tmp_path)
    assert record["status"] == "ok"
    assert record["dataset"]["name"] == "shapes"
    assert record["split"]["name"] == "shapes-3-1"
    assert record["dataset"]["n_train"] == 24


def test_a_plugin_module_that_cannot_be_imported_is_one_line_naming_it(tmp_path):
    env = shell_env(tmp_path / "bin")
    env["ZSBENCH_PLUGINS"] = "no_such_plugin_module"
    done = subprocess.run(["zsbench", "ls", "methods"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "ZSBENCH_PLUGINS" in lines[0] and "no_such_plugin_module" in lines[0], lines
    assert "PYTHONPATH" in lines[0]
