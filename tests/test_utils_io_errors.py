"""I/O failures are one line and status 2, never a traceback: a full disk, a folder that cannot be
written, --out naming a file, a bad config.yaml or a damaged checkpoint in a run directory."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

import streamvae
from streamvae import utils
from streamvae.cli import main

from .conftest import without_banner
from .test_cli import CFG, SMOKE

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

    from .conftest import write_fashion_root

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


# -- leftovers of the reliability audit (issue 30, item 9) ---------------------------------------------------

@pytest.mark.parametrize("learner", ["ocm", "dynamic-ocm"])
def test_an_ocm_run_that_can_never_step_is_refused_before_training(tmp_path, data_root, capsys, learner):
    """Was: refused only after the whole stream, leaving a directory that could be neither resumed nor re-run."""
    from .conftest import REPO

    out = tmp_path / learner
    code = main(["run", str(REPO / f"configs/split_fashion/{learner}.yaml"), *SMOKE, *FAST, "--set",
                 "stream.batch_size=16", "--set", "memory.stm_capacity=8", "--set", "memory.ltm_capacity=8",
                 "--data-root", data_root, "--out", str(out)])
    line = one_error_line(capsys, "no optimiser step", "memory.stm_capacity=8", "memory.ltm_capacity=8")
    assert code == 2 and not out.exists(), line


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_run_files_are_readable_by_the_group_as_the_umask_allows(tmp_path, data_root, umask):
    """Was: every atomically written file was 0600 (mkstemp's mode) whatever the umask."""
    old = os.umask(umask)
    try:
        out = tmp_path / "run"
        assert main(["run", CFG, *SMOKE, *FAST, "--data-root", data_root, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert {"results.json", "checkpoint.pt", "config.yaml", "metrics.jsonl", "samples.png"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert not (out / ".lock").exists()  # a finished run leaves no lock file


def test_an_atomic_write_fsyncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    import stat

    synced: list[str] = []
    real = os.fsync

    def spy(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    utils.atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert synced == ["file", "dir"]  # the data, then the directory entry that the rename changed


def test_a_failed_write_names_the_file_being_written(tmp_path):
    """A full disk (here: a file-size limit, which fails the same write) used to say only "No space left
    on device" (a write error carries no file name)."""
    import subprocess
    import sys

    target = tmp_path / "results.json"
    code = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); from streamvae.utils import atomic_write_bytes\n"
            f"try:\n    atomic_write_bytes({str(target)!r}, b'x' * 100000)\n"
            "except OSError as e:\n    print(e.filename, '|', e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(streamvae.__file__).parents[1])})
    assert done.stdout.startswith(f"{target} |") and "too large" in done.stdout, (done.stdout, done.stderr[-300:])
    assert not list(tmp_path.iterdir())  # no temporary file left


def test_eval_prints_its_row_before_writing_so_a_read_only_run_loses_nothing(run_dir, finished, monkeypatch, capsys):
    real = utils.write_json

    def read_only(path, obj):
        if str(path).endswith("eval.json"):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, obj)

    monkeypatch.setattr(utils, "write_json", read_only)
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--data-root", finished[1]]) == 2
    printed = capsys.readouterr()
    err = printed.err.strip().splitlines()
    assert len(err) == 1 and "eval.json" in err[0] and "Read-only" in err[0]
    assert "| run | learner |" in printed.out and '"ll_iw20"' in printed.out  # the table and the whole row


def test_a_tiny_gaussian_std_is_named_not_the_learning_rate(tmp_path, data_root, capsys):
    out = tmp_path / "tiny"
    assert main(["run", CFG, *SMOKE, *FAST, "--set", "model.likelihood=gaussian", "--set", "model.gaussian_std=1e-30",
                 "--data-root", data_root, "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "model.gaussian_std" in line and "learner.lr" not in line


def test_a_truncated_gzip_message_reads_as_english(tmp_path):
    import gzip

    from streamvae.data.readers import read_idx
    from streamvae.errors import DataError

    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    header = b"\x00\x00\x08\x03" + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path.write_bytes(gzip.compress(header + os.urandom(78400))[:300])  # cut inside the deflate stream
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert "gzipped an" not in str(e.value) and "expected gzip data holding an IDX file" in str(e.value)
