"""Uniform controls: eval's execution fields, --no-progress on a fresh run and a resume, the banner, stops."""
from __future__ import annotations

import json
import os
import signal

from streamvae.cli import main
from streamvae.learners import LEARNERS

from .conftest import REPO

CFG = str(REPO / "configs/split_fashion/reservoir.yaml")
SMOKE = ["--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=2"]


def test_eval_takes_execution_fields_and_refuses_training_fields(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    assert main(["run", CFG, *SMOKE, "--no-progress", "--data-root", data_root, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--set", "threads=1", "--set", "device=cpu", "--set", "precision=fp32",
                 "--set", "eval.iw_samples=10", "--data-root", data_root]) == 0
    row = json.loads((out / "eval.json").read_text())
    assert "ll_iw10" in row
    assert main(["eval", str(out), "--set", "learner.lr=0.1", "--data-root", data_root]) == 2
    err = capsys.readouterr().err
    assert "threads, device, precision" in err and "learner.lr" in err


def test_no_progress_hides_the_bar_not_the_banner_on_a_run_and_a_resume(tmp_path, data_root, monkeypatch, capsys):
    out = tmp_path / "run"
    real = LEARNERS["reservoir"].observe

    def observe_with_ctrl_c(self, x):
        if self.arrivals == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a stop after this arrival
        return real(self, x)

    monkeypatch.setattr(LEARNERS["reservoir"], "observe", observe_with_ctrl_c)
    assert main(["run", CFG, *SMOKE, "--set", "checkpoint_every=0", "--no-progress", "--data-root", data_root,
                 "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "streamvae run: " in err and "optimiser steps" in err  # the banner, with the estimate
    assert "batch/s" not in err and "evaluating" not in err  # no progress bar
    stop = err.strip().splitlines()[-1]
    assert stop.startswith("stopped: ") and "error" not in stop and f"streamvae run --resume {out}" in stop

    monkeypatch.setattr(LEARNERS["reservoir"], "observe", real)
    assert main(["run", "--resume", str(out), "--no-progress", "--data-root", data_root]) == 0
    err = capsys.readouterr().err
    assert "streamvae resume: " in err and "batch/s" not in err
    # --no-progress is a run-environment setting: the resumed run's results do not change with it
    assert json.loads((out / "results.json").read_text())["arrivals"] == 6
