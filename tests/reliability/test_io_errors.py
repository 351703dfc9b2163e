"""I/O failures are one line and status 2, never a traceback: a full disk, a folder that cannot be
written, --out naming a file, a bad config.yaml or a damaged checkpoint in a run directory."""
from __future__ import annotations

import errno
import os
import shutil

import pytest

from streamvae import utils
from streamvae.cli import main

from ..conftest import without_banner
from ..e2e.test_cli import CFG, SMOKE

FAST = ["--set", "kernels=torch", "--set", "eval.probe=false", "--set", "checkpoint_every=1"]


def one_error_line(capsys, *needles) -> str:
    err = without_banner(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    for n in needles:
        assert n in err[0], (n, err[0])
    return err[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke run (made once per module; tests copy it) and its data root."""
    from streamvae.data import datasets

    from ..conftest import write_fashion_root

    base = tmp_path_factory.mktemp("io")
    root = str(write_fashion_root(base / "data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "SYSTEM_DIRS", {})
        mp.setenv("STREAMVAE_CACHE", str(base / "cache"))
        datasets.clear_cache()
        assert main(["run", CFG, *SMOKE, *FAST, "--data-root", root, "--out", str(base / "run")]) == 0
    datasets.clear_cache()
    return base / "run", root


@pytest.fixture()
def run_dir(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    return out


def test_a_full_disk_is_one_line(tmp_path, data_root, monkeypatch, capsys):
    real = utils.atomic_write_bytes

    def full(path, data):
        if str(path).endswith("checkpoint.pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(utils, "atomic_write_bytes", full)
    out = tmp_path / "full"
    assert main(["run", CFG, *SMOKE, *FAST, "--data-root", data_root, "--out", str(out)]) == 2
    one_error_line(capsys, "No space left on device", "checkpoint.pt")


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, data_root, monkeypatch, capsys):
    parent = tmp_path / "readonly"
    parent.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the folder refuse as a read-only mount would
        real = type(parent).mkdir

        def refuse(self, *args, **kwargs):
            if str(self).startswith(str(parent)):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(type(parent), "mkdir", refuse)
    else:
        parent.chmod(0o500)
    try:
        assert main(["run", CFG, *SMOKE, *FAST, "--data-root", data_root, "--out", str(parent / "run")]) == 2
    finally:
        parent.chmod(0o700)
    one_error_line(capsys, "Permission denied", "readonly")


def test_out_naming_a_file_is_one_line(tmp_path, data_root, capsys):
    f = tmp_path / "a-file"
    f.write_text("not a folder")
    assert main(["run", CFG, *SMOKE, *FAST, "--data-root", data_root, "--out", str(f)]) == 2
    one_error_line(capsys, str(f), "is a file")
    assert f.read_text() == "not a folder"


@pytest.mark.parametrize("text", ["learner: [unclosed", "- a list\n- of things\n", "stream: 5\n", "learner: {name: 7}\n",
                                  "\x00\x01\x02binary", "seed: .inf\n", ""])
def test_a_bad_config_yaml_in_a_run_directory_is_one_line(run_dir, finished, capsys, text):
    (run_dir / "results.json").unlink()  # unfinished: resume reads config.yaml
    (run_dir / "config.yaml").write_text(text)
    for argv in (["run", "--resume", str(run_dir)], ["eval", str(run_dir)]):
        assert main([*argv, "--data-root", finished[1]]) == 2
        one_error_line(capsys)


@pytest.mark.parametrize("damage", ["truncated", "empty", "wrong-shapes", "no-learner", "arrival-out-of-range"])
def test_a_damaged_checkpoint_is_one_line_naming_it(run_dir, finished, capsys, damage):
    import torch

    (run_dir / "results.json").unlink()
    ckpt = run_dir / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "wrong-shapes":
        state["learner"]["model"] = {k: v[:1] for k, v in state["learner"]["model"].items()}
        torch.save(state, ckpt)
    elif damage == "no-learner":
        del state["learner"]
        torch.save(state, ckpt)
    else:
        state["arrival"] = 10**6
        torch.save(state, ckpt)
    for argv in (["run", "--resume", str(run_dir)], ["eval", str(run_dir)]):
        assert main([*argv, "--data-root", finished[1]]) == 2
        one_error_line(capsys, "checkpoint.pt")


def test_a_damaged_metrics_file_is_one_line_naming_it(run_dir, finished, capsys):
    (run_dir / "results.json").unlink()
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"arrival": 6, "fin\n')
    assert main(["run", "--resume", str(run_dir), "--data-root", finished[1]]) == 2
    one_error_line(capsys, "metrics.jsonl", "line")
