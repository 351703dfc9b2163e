"""End to end through ``main(argv)`` on tiny budgets: runs, resumes, evaluation, errors."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from streamvae import native, registry
from streamvae.native import clib
from streamvae.cli import main
from streamvae.data.streams import Stream
from streamvae.learners import LEARNERS

from .conftest import REPO, needs_native, stream_crashing_at

CFG = str(REPO / "configs/split_fashion/reservoir.yaml")
SMOKE = ["--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=2", "--no-progress"]


def run_cli(tmp_path, data_root, name, *extra, cfg=CFG):
    out = tmp_path / name
    code = main(["run", cfg, *SMOKE, *extra, "--data-root", data_root, "--out", str(out)])
    return code, out


def comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if "wall" not in k}


@pytest.mark.parametrize("learner", ["finetune", "reservoir", "iid"])
def test_each_learner_runs_and_writes_its_results(tmp_path, data_root, learner, capsys):
    code, out = run_cli(tmp_path, data_root, learner, cfg=str(REPO / f"configs/split_fashion/{learner}.yaml"))
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["learner"] == learner and results["arrivals"] == 6
    assert results["ll_iw20"] < 0 and results["recon_sse"] > 0
    assert len(results["per_task"]["ll_iw20"]) == 5
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["arrival"] for r in rows] == [2, 4, 6] and rows[-1]["final"]
    for f in ("config.yaml", "samples.png", "reconstructions.png", "checkpoint.pt"):
        assert (out / f).exists()
    assert "| run | learner |" in capsys.readouterr().out


@pytest.mark.parametrize("path", ["auto", "torch"])
def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, data_root, path):
    code, full = run_cli(tmp_path, data_root, "full", "--set", f"kernels={path}")
    assert code == 0
    with stream_crashing_at(4), pytest.raises(RuntimeError):
        run_cli(tmp_path, data_root, "crashed", "--set", f"kernels={path}")
    crashed = tmp_path / "crashed"
    assert torch.load(crashed / "checkpoint.pt", weights_only=False)["arrival"] == 4
    assert main(["run", "--resume", str(crashed), "--data-root", data_root]) == 0
    a = json.loads((full / "results.json").read_text())
    b = json.loads((crashed / "results.json").read_text())
    assert comparable(a) == comparable(b)
    strip = lambda p: [comparable(json.loads(x)) for x in p.read_text().splitlines()]  # noqa: E731
    assert strip(full / "metrics.jsonl") == strip(crashed / "metrics.jsonl")
    assert a["kernels"].startswith("torch" if path == "torch" or native.library() is None else "native")


def _ll_values(results: dict) -> dict[str, float]:
    """Every ll_iw* number of a results.json (overall, selected/mixture, per task), by a flat name."""
    out = {k: v for k, v in results.items() if k.startswith("ll_iw") and isinstance(v, float)}
    for k, v in results["per_task"].items():
        if k.startswith("ll_iw"):
            out.update({f"{k}[{i}]": x for i, x in enumerate(v) if x is not None})
    return out




@needs_native
@pytest.mark.parametrize("cfg", ["reservoir", "dynamic-ocm"])
def test_native_and_torch_runs_give_the_same_numbers(tmp_path, data_root, cfg):
    """Same seed, same draws on both paths: the results differ by fp32 rounding only."""
    res = {}
    for path in ("native", "torch"):
        code, out = run_cli(tmp_path, data_root, path, "--set", f"kernels={path}",
                            cfg=str(REPO / f"configs/split_fashion/{cfg}.yaml"))
        assert code == 0
        res[path] = json.loads((out / "results.json").read_text())
    assert res["native"]["kernels"].startswith("native") and res["torch"]["kernels"].startswith("torch")
    a, b = _ll_values(res["native"]), _ll_values(res["torch"])
    assert a.keys() == b.keys() and len(a) > 5
    assert max(abs(a[k] - b[k]) for k in a) < 0.01, {k: (a[k], b[k]) for k in a}


@needs_native
def test_resume_on_the_other_path_is_recorded_and_gives_the_same_numbers(tmp_path, data_root, monkeypatch):
    code, full = run_cli(tmp_path, data_root, "full", "--set", "kernels=torch")
    assert code == 0
    with stream_crashing_at(4), pytest.raises(RuntimeError):
        run_cli(tmp_path, data_root, "crashed", "--set", "kernels=torch")
    crashed = tmp_path / "crashed"
    config = crashed / "config.yaml"
    config.write_text(config.read_text().replace("kernels: torch", "kernels: native"))
    assert main(["run", "--resume", str(crashed), "--data-root", data_root]) == 0
    a = json.loads((full / "results.json").read_text())
    b = json.loads((crashed / "results.json").read_text())
    assert b["kernels"].endswith("; torch from arrival 0, native from arrival 4")
    assert torch.load(crashed / "checkpoint.pt", weights_only=False)["kernel_paths"] == [[0, "torch"], [4, "native"]]
    la, lb = _ll_values(a), _ll_values(b)
    assert max(abs(la[k] - lb[k]) for k in la) < 0.01


def test_native_is_refused_where_it_cannot_be_built(tmp_path, data_root, monkeypatch, capsys):
    monkeypatch.setattr(clib, "_state", {"lib": None, "tried": True, "error": "no C compiler found"})
    code, out = run_cli(tmp_path, data_root, "native", "--set", "kernels=native")
    assert code == 2 and not (out / "config.yaml").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kernels=native" in err[0] and "no C compiler found" in err[0]
    code, out = run_cli(tmp_path, data_root, "auto", "--set", "kernels=auto")  # auto: the torch path
    assert code == 0
    assert json.loads((out / "results.json").read_text())["kernels"] == "torch (no C compiler found)"


def test_ctrl_c_checkpoints_cleanly_and_resumes_identically(tmp_path, data_root, monkeypatch):
    code, full = run_cli(tmp_path, data_root, "full", "--set", "checkpoint_every=0")
    assert code == 0
    real = LEARNERS["reservoir"].observe

    def observe_with_ctrl_c(self, x):
        if self.arrivals == 3:  # the third arrival (the loop counts it before observe)
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-arrival; the loop finishes the arrival first
        return real(self, x)

    monkeypatch.setattr(LEARNERS["reservoir"], "observe", observe_with_ctrl_c)
    code, out = run_cli(tmp_path, data_root, "interrupted", "--set", "checkpoint_every=0")
    assert code == 130 and not (out / "results.json").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["arrival"] == 3
    monkeypatch.setattr(LEARNERS["reservoir"], "observe", real)
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 0
    assert comparable(json.loads((full / "results.json").read_text())) == \
        comparable(json.loads((out / "results.json").read_text()))


def test_the_learner_never_receives_labels_or_tasks(tmp_path, data_root, monkeypatch):
    seen = []
    real = LEARNERS["reservoir"].observe

    def spy(self, *args, **kwargs):
        seen.append((args, kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LEARNERS["reservoir"], "observe", spy)
    code, _ = run_cli(tmp_path, data_root, "spy")
    assert code == 0 and len(seen) == 6
    stream = Stream(registry.load_config(CFG, ["budget=smoke", "stream.samples_per_class=40"]).stream, data_root)
    for t, (args, kwargs) in enumerate(seen):
        assert kwargs == {} and len(args) == 1  # images only: no y, no task, no boundary flag
        assert torch.equal(args[0], stream.batch(t).x)


def test_eval_command_rescores_a_finished_run(tmp_path, data_root):
    code, out = run_cli(tmp_path, data_root, "done")
    assert main(["eval", str(out), "--set", "eval.iw_samples=30", "--data-root", data_root]) == 0
    assert "ll_iw30" in json.loads((out / "eval.json").read_text())
    # without overrides it is the run's own final evaluation, draw for draw
    assert main(["eval", str(out), "--data-root", data_root]) == 0
    again, final = json.loads((out / "eval.json").read_text()), json.loads((out / "results.json").read_text())
    assert again["ll_iw20"] == final["ll_iw20"] and again["recon_sse"] == final["recon_sse"]


def test_bad_input_exits_non_zero_with_one_clear_line(tmp_path, data_root, capsys):
    assert main(["run", CFG, "--set", "learner.epochz=3", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown config key 'learner.epochz'" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "x").exists()  # nothing half-written
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint.pt" in capsys.readouterr().err
    empty = tmp_path / "empty-root"
    empty.mkdir()
    assert main(["run", CFG, *SMOKE, "--data-root", str(empty), "--out", str(tmp_path / "y")]) == 2
    assert "fashion" in capsys.readouterr().err.lower()


def test_corrupt_dataset_file_is_a_clear_error(tmp_path, data_root, capsys):
    f = os.path.join(data_root, "fashion-mnist", "train-images-idx3-ubyte.gz")
    with open(f, "r+b") as fh:
        data = fh.read()
    with open(f, "wb") as fh:
        fh.write(data[: len(data) // 2])  # truncated download
    from streamvae.data import datasets
    datasets.clear_cache()
    code, out = run_cli(tmp_path, data_root, "corrupt")
    assert code == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err
    assert not (out / "results.json").exists()


def test_nan_loss_is_reported(tmp_path, data_root, capsys):
    code, out = run_cli(tmp_path, data_root, "nan", "--set", "learner.lr=1e30")
    assert code == 2 and "non-finite loss" in capsys.readouterr().err


def test_existing_run_dir_is_not_overwritten(tmp_path, data_root, capsys):
    assert run_cli(tmp_path, data_root, "once")[0] == 0
    assert run_cli(tmp_path, data_root, "once")[0] == 2
    assert "--resume" in capsys.readouterr().err


def test_data_list_shows_every_dataset(data_root, capsys):
    assert main(["data", "list", "--data-root", data_root]) == 0
    out = capsys.readouterr().out
    assert "fashion" in out and "mnist" in out and "cifar10" in out


def test_a_run_prints_a_banner_and_logs_every_arrival(tmp_path, data_root, capsys):
    code = main(["run", CFG, "--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=2",
                 "--data-root", data_root, "--out", str(tmp_path / "r")])
    assert code == 0
    err = capsys.readouterr().err
    assert f"-> {tmp_path / 'r'}" in err and "learner reservoir, budget smoke" in err and "optimiser steps" in err
    assert "evaluation at arrival 2:" in err and "final evaluation: k=20" in err
    rows = [json.loads(line) for line in (tmp_path / "r/train.jsonl").read_text().splitlines()]
    assert [r["arrival"] for r in rows] == list(range(1, 7)) and all("loss" in r for r in rows)
    assert rows[-1]["steps"] == json.loads((tmp_path / "r/results.json").read_text())["steps"]


def test_a_stream_cut_short_reports_the_tasks_it_reached_not_all(tmp_path, data_root):
    # one arrival of 64 images covers classes 0-1 only (task 0): the headline is task 0's value,
    # not an average that includes the four tasks the learner never saw
    code, out = run_cli(tmp_path, data_root, "short", "--set", "stream.max_batches=1")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["arrivals"] == 1 and results["tasks_seen"] == 1
    assert results["ll_iw20"] == pytest.approx(results["per_task"]["ll_iw20"][0])
