"""A run directory: the final row once, resume from the checkpoint's config, one writer, no leftovers."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import streamvae
from streamvae import loop, run_directory
from streamvae.cli import main
from streamvae.data.streams import Stream
from streamvae.learners import LEARNERS
from streamvae.rundir import RunDirLock

from .conftest import REPO, stream_crashing_at, without_banner
from .test_cli import CFG, SMOKE, comparable, run_cli

# these tests are about files, not numbers: no native build, no probes (half the time of a smoke run)
TORCH = ("--set", "kernels=torch", "--set", "eval.probe=false")


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def files(out) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def crashed_template(tmp_path_factory):
    """One run that crashed at arrival 4 (checkpoint_every=1: its checkpoint is at 4), made once per module
    in its own data root; tests copy it."""
    from streamvae.data import datasets

    from .conftest import write_fashion_root

    base = tmp_path_factory.mktemp("crashed")
    root = str(write_fashion_root(base / "data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "SYSTEM_DIRS", {})
        mp.setenv("STREAMVAE_CACHE", str(base / "cache"))
        datasets.clear_cache()
        with stream_crashing_at(4), pytest.raises(RuntimeError):
            run_cli(base, root, "run", *TORCH, "--set", "checkpoint_every=1")
    datasets.clear_cache()
    return base / "run"


@pytest.fixture()
def crashed(crashed_template, tmp_path, data_root):
    """A copy of the crashed run (its data root holds the same files as ``data_root``)."""
    out = tmp_path / "crashed"
    shutil.copytree(crashed_template, out)
    return out


# -- 3. the final row once ---------------------------------------------------------------------------------

def test_resume_of_a_finished_run_says_so_in_one_line_and_changes_nothing(tmp_path, data_root, capsys):
    code, out = run_cli(tmp_path, data_root, "done", *TORCH)
    assert code == 0
    before = files(out)
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip().count("\n") == 0 and "finished" in printed.out and printed.err == ""
    assert files(out) == before


def test_ctrl_c_while_the_final_files_are_written_keeps_one_final_row(tmp_path, data_root, monkeypatch):
    code, full = run_cli(tmp_path, data_root, "full", *TORCH)
    assert code == 0

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    for module, target in ((run_directory, "save_grids"), (loop, "final_results")):  # grids / before results.json
        real = getattr(module, target)
        monkeypatch.setattr(module, target, ctrl_c)
        code, out = run_cli(tmp_path, data_root, target, *TORCH)
        assert code == 130 and not (out / "results.json").exists()
        monkeypatch.setattr(module, target, real)
        assert main(["run", "--resume", str(out), "--data-root", data_root]) == 0
        assert len([r for r in rows(out) if r["final"]]) == 1
        assert [comparable(r) for r in rows(out)] == [comparable(r) for r in rows(full)]
        assert comparable(json.loads((out / "results.json").read_text())) == \
            comparable(json.loads((full / "results.json").read_text()))


# -- 4. resume uses the checkpoint's config ------------------------------------------------------------------

def _edit(out, old, new):
    path = out / "config.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("old, new, key", [
    ("lr: 0.0001", "lr: 0.0003", "learner.lr"),
    ("seed: 0", "seed: 5", "seed"),
    ("batch_size: 64", "batch_size: 32", "stream.batch_size"),
])
def test_resume_refuses_an_edited_config_yaml_in_one_line(crashed, data_root, capsys, old, new, key):
    out = crashed
    _edit(out, old, new)
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 2
    err = without_banner(capsys.readouterr().err)
    assert len(err) == 1 and key in err[0] and "config.yaml" in err[0]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["arrival"] == 4  # nothing changed
    if key != "learner.lr":  # the stream, the seed, the model and the memories never change, flag or not
        assert main(["run", "--resume", str(out), "--accept-config-change", "--data-root", data_root]) == 2
        assert "cannot change" in capsys.readouterr().err


def test_an_accepted_config_change_is_applied_and_recorded(crashed, data_root):
    out = crashed
    _edit(out, "lr: 0.0001", "lr: 0.0003")
    assert main(["run", "--resume", str(out), "--accept-config-change", "--data-root", data_root]) == 0
    change = {"arrival": 4, "changes": {"learner.lr": [0.0001, 0.0003]}}
    assert [json.loads(x) for x in (out / "config-changes.jsonl").read_text().splitlines()] == [change]
    assert json.loads((out / "results.json").read_text())["config_changes"] == [change]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["config"]["learner"]["lr"] == 0.0003
    assert ckpt["learner"]["optimizers"]["adam"]["param_groups"][0]["lr"] == 0.0003  # really used


def test_resume_keeps_the_run_environment_fields_of_config_yaml(crashed, data_root):
    out = crashed
    _edit(out, "threads: 1", "threads: 2")  # like kernels, progress, tensorboard: not part of the results
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 0
    assert not (out / "config-changes.jsonl").exists()


def test_checkpoints_record_the_code_version(crashed, data_root):
    out = crashed
    assert torch.load(out / "checkpoint.pt", weights_only=True)["version"] == streamvae.__version__


# -- 5. eval of an unfinished run ------------------------------------------------------------------------------

def test_eval_of_an_unfinished_run_labels_the_arrival_it_scored(crashed, data_root, capsys):
    out = crashed
    capsys.readouterr()
    assert main(["eval", str(out), "--data-root", data_root]) == 0
    row = json.loads((out / "eval.json").read_text())
    assert row["arrival"] == 4 and row["final"] is False and row["unfinished"] is True
    assert row["iw_samples"] == 20  # the final evaluation's k (smoke budget), not the curve's
    assert "unfinished" in capsys.readouterr().out


# -- 6. one writer at a time -----------------------------------------------------------------------------------

def test_a_second_writer_fails_at_once_naming_the_directory(tmp_path, data_root, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with RunDirLock(out):
        code = main(["run", CFG, *SMOKE, *TORCH, "--data-root", data_root, "--out", str(out)])
    err = without_banner(capsys.readouterr().err)
    assert code == 2 and len(err) == 1 and str(out) in err[0] and "in use" in err[0]
    assert not (out / "config.yaml").exists()


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path, data_root):
    out = tmp_path / "stale"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from streamvae.rundir import RunDirLock; "
                               f"RunDirLock({str(out)!r}).__enter__(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["run", CFG, *SMOKE, *TORCH, "--data-root", data_root, "--out", str(out)]) == 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / ".lock").exists()  # the stale lock file is still there ...
    assert main(["run", CFG, *SMOKE, *TORCH, "--data-root", data_root, "--out", str(out)]) == 0  # ... and harmless


# -- 11. leftovers ---------------------------------------------------------------------------------------------

def test_temporary_files_of_a_killed_write_are_removed_on_resume(crashed, data_root):
    out = crashed
    stale = [out / ".checkpoint.pt.k2j4h1.tmp", out / ".metrics.jsonl.x9.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 0
    assert not any(p.exists() for p in stale)


def test_a_failed_start_leaves_no_run_directory(tmp_path, data_root, monkeypatch, capsys):
    from streamvae.errors import DataError

    def broken_test_set(self, *args, **kwargs):
        raise DataError("t10k-images-idx3-ubyte.gz: truncated")

    monkeypatch.setattr(Stream, "test_set", broken_test_set)  # fails after the directory is made
    code, out = run_cli(tmp_path, data_root, "nested/failed", *TORCH)
    assert code == 2 and not out.exists()
    code, out = run_cli(tmp_path, data_root, "huge", "--set", "stream.batch_size=100000")
    err = without_banner(capsys.readouterr().err)
    assert code == 2 and not out.exists()
    assert "stream.batch_size=100000" in err[-1] and "400 training images" in err[-1]


def test_a_data_root_that_does_not_exist_is_an_error(tmp_path, data_root, capsys):
    for argv in (["run", CFG, *SMOKE, "--out", str(tmp_path / "x")], ["data", "list"]):
        assert main([*argv, "--data-root", str(tmp_path / "nowhere")]) == 2
        err = without_banner(capsys.readouterr().err)
        assert len(err) == 1 and "nowhere" in err[0] and "does not exist" in err[0]


def test_sigterm_checkpoints_at_the_end_of_the_arrival_and_exits_130(tmp_path, data_root, monkeypatch, capsys):
    real = LEARNERS["reservoir"].observe

    def observe_with_sigterm(self, x):
        if self.arrivals == 3:  # the third arrival (the loop counts it before observe)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, x)

    monkeypatch.setattr(LEARNERS["reservoir"], "observe", observe_with_sigterm)
    code, out = run_cli(tmp_path, data_root, "term", *TORCH, "--set", "checkpoint_every=0")
    err = without_banner(capsys.readouterr().err)
    assert code == 130 and len(err) == 1 and "SIGTERM" in err[0] and "--resume" in err[0]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["arrival"] == 3


# -- 2. a run that trains nothing never exits 0 ------------------------------------------------------------------

def test_a_run_that_took_no_step_is_an_error_not_a_result(tmp_path, data_root, monkeypatch, capsys):
    def observe_nothing(self, x):
        return {}

    monkeypatch.setattr(LEARNERS["reservoir"], "observe", observe_nothing)
    code, out = run_cli(tmp_path, data_root, "idle", *TORCH)
    err = without_banner(capsys.readouterr().err)
    assert code == 2 and "no optimiser step" in err[-1] and not (out / "results.json").exists()


@pytest.mark.parametrize("learner", ["reservoir", "iid", "reservoir-vaegan"])
def test_a_memory_that_never_fills_a_minibatch_is_refused_before_training(tmp_path, data_root, learner, capsys):
    code, out = run_cli(tmp_path, data_root, learner, "--set", "stream.batch_size=16", "--set", "memory.capacity=8",
                        cfg=str(REPO / f"configs/split_fashion/{learner}.yaml"))
    assert code == 2 and not out.exists()
    assert "no optimiser step" in capsys.readouterr().err


# -- two runs started into one --out: the one that finishes first is never replaced ---------------------------

RACE_OFFSETS = (0.5, 1.5, 3.0)  # seconds between the two starts


def test_two_runs_started_into_one_out_never_replace_a_finished_run(tmp_path, data_root):
    """Was: the second run checked for a finished run before it took the lock; when the first finished in
    between, the second replaced it and both exited 0 (5 of 6 trials with starts 1-3 s apart). The second
    run builds the native kernels in a fresh cache (seconds between its check and its lock), as a cold
    machine does, which widens that window; the check under the lock closes it."""
    import time

    def start(out, seed, kernels, cache):
        argv = ["run", CFG, *SMOKE, "--set", f"seed={seed}", "--set", f"kernels={kernels}", "--set", "eval.probe=false",
                "--set", "threads=1", "--data-root", data_root, "--out", str(out)]
        env = {**os.environ, "STREAMVAE_CACHE": str(cache), "PYTHONPATH": str(Path(streamvae.__file__).parents[1])}
        return subprocess.Popen([sys.executable, "-c", f"import sys; from streamvae.cli import main; sys.exit(main({argv!r}))"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    for i, offset in enumerate(RACE_OFFSETS):
        out = tmp_path / f"race{i}"
        first = start(out, 1, "torch", tmp_path / "cache-first")
        time.sleep(offset)
        second = start(out, 2, "auto", tmp_path / f"cache-second-{i}")
        done = {seed: (p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for seed, p in ((1, first), (2, second))}
        winners = [seed for seed, (code, _, _) in done.items() if code == 0]
        assert len(winners) == 1, (offset, {s: (c, e[-300:]) for s, (c, _, e) in done.items()})
        results = json.loads((out / "results.json").read_text())
        assert results["seed"] == winners[0]  # the finished run is the winner's, whole
        assert f"seed: {winners[0]}" in (out / "config.yaml").read_text()
        loser = done[3 - winners[0]]
        err = without_banner(loser[2])
        assert loser[0] == 2 and len(err) == 1 and ("already holds a run" in err[0] or "in use" in err[0]), loser
        assert not (out / ".lock").exists()  # a finished run leaves no lock file
