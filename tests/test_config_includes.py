"""``include:`` in a config file: cycles, depth, types, devices and FIFOs are one line each (before: a
RecursionError, a TypeError, reading /dev/zero until memory ran out, or a hang on a FIFO)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import streamvae
from streamvae.cli import main


def _config_show(path, capsys) -> str:
    capsys.readouterr()
    assert main(["config", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_a_file_that_includes_itself_is_a_named_cycle(tmp_path, capsys):
    (tmp_path / "self.yaml").write_text("include: self.yaml\nseed: 1\n")
    line = _config_show(tmp_path / "self.yaml", capsys)
    assert "include cycle" in line and "self.yaml -> self.yaml" in line


def test_a_loop_of_includes_names_every_file_in_it(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: [c.yaml]\n")
    (tmp_path / "c.yaml").write_text("include: a.yaml\n")
    line = _config_show(tmp_path / "a.yaml", capsys)
    assert "include cycle (a.yaml -> b.yaml -> c.yaml -> a.yaml)" in line


def test_a_1200_deep_chain_is_refused_at_the_depth_limit(tmp_path, capsys):
    for i in range(1200):
        (tmp_path / f"c{i}.yaml").write_text(f"include: c{i + 1}.yaml\n" if i < 1199 else "seed: 3\n")
    line = _config_show(tmp_path / "c0.yaml", capsys)
    assert "nested more than 16 deep" in line


@pytest.mark.parametrize("value", ["5", "[5]", "{a: b}", "['']", "true"])
def test_include_must_be_a_file_name_or_a_list_of_them(tmp_path, capsys, value):
    (tmp_path / "x.yaml").write_text(f"include: {value}\n")
    assert "include must be a file name or a list of file names" in _config_show(tmp_path / "x.yaml", capsys)


def test_a_shallow_include_still_works(tmp_path):
    from streamvae import registry

    (tmp_path / "base.yaml").write_text("seed: 7\nlearner: {name: finetune}\n")
    (tmp_path / "mid.yaml").write_text("include: base.yaml\nname: mid\n")
    (tmp_path / "top.yaml").write_text("include: [mid.yaml, base.yaml]\nthreads: 1\n")  # a diamond, not a cycle
    cfg = registry.load_config(tmp_path / "top.yaml")
    assert (cfg.seed, cfg.name, cfg.threads, cfg.learner.name) == (7, "mid", 1, "finetune")


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_including_a_device_or_a_fifo_is_one_line(tmp_path, target):
    """In a subprocess with a memory limit and a timeout: before, /dev/zero was read until memory ran
    out and a FIFO blocked forever."""
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    (tmp_path / "x.yaml").write_text(f"include: {target}\n")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
            f"from streamvae.cli import main; sys.exit(main(['config', 'show', {str(tmp_path / 'x.yaml')!r}]))")
    env = {**os.environ, "PYTHONPATH": str(Path(streamvae.__file__).parents[1])}
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"including {target} hung")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and target in err[0] and "not a regular file" in err[0], \
        (done.returncode, done.stderr[-400:])
