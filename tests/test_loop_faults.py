"""Faults in real processes: SIGKILL at seeded random points of a smoke run, then --resume until it is
finished (results equal to an uninterrupted run, the final row written once); SIGKILL while the final
files are written; SIGTERM and Ctrl-C (also during start-up) end in one line with status 130."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, without_banner

CFG = str(REPO / "configs/split_fashion/reservoir.yaml")
# checkpoints at every arrival so that kills land between, inside and after them; no native build, no probes
ARGS = ["--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=2", "--set",
        "checkpoint_every=1", "--set", "kernels=torch", "--set", "eval.probe=false", "--no-progress"]
KILL_TRIALS = 3  # RELIABILITY.md counts these
SEED = 20261127


def env(tmp_path: Path) -> dict:
    return {**os.environ, "STREAMVAE_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def start(argv: list[str], tmp_path: Path, prelude: str = "") -> subprocess.Popen:
    code = f"import sys; {prelude}\nfrom streamvae.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_argv(data_root: str, out: Path) -> list[str]:
    return ["run", CFG, *ARGS, "--data-root", data_root, "--out", str(out)]


def finish(data_root: str, out: Path, tmp_path: Path) -> int:
    """Resume (or start again when no checkpoint was written) until the run is finished; returns the tries."""
    for tries in range(1, 6):
        argv = (["run", "--resume", str(out), "--data-root", data_root] if (out / "checkpoint.pt").exists()
                else run_argv(data_root, out))
        p = start(argv, tmp_path)
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        if (out / "results.json").exists():
            return tries
    raise AssertionError("not finished after 5 tries")


def _checkpoint_arrival(out: Path):
    import torch

    return torch.load(out / "checkpoint.pt", weights_only=True)["arrival"] if (out / "checkpoint.pt").exists() else None


def comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if "wall" not in k}


def metrics(out: Path) -> list[dict]:
    return [comparable(json.loads(line)) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[str, Path, float]:
    """A data root, an uninterrupted run of it in a subprocess, and how long that run's run phase took
    after start-up (made once per module)."""
    from .conftest import write_fashion_root

    base = tmp_path_factory.mktemp("faults")
    root = str(write_fashion_root(base / "data"))
    out = base / "reference"
    t0 = time.perf_counter()
    p = start(run_argv(root, out), base)
    while not (out / "config.yaml").exists() and p.poll() is None:
        time.sleep(0.01)
    t_started = time.perf_counter()
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    return root, out, max(time.perf_counter() - t_started, 0.5 * (time.perf_counter() - t0))


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_results(tmp_path, reference):
    data_root, ref, run_time = reference
    rng = random.Random(SEED)
    delivered = 0
    for trial in range(KILL_TRIALS):
        out = tmp_path / f"killed{trial}"
        p = start(run_argv(data_root, out), tmp_path)
        while not (out / "config.yaml").exists() and p.poll() is None:  # start-up done: the run phase begins
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, run_time))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            delivered += 1
        p.communicate(timeout=300)
        at = _checkpoint_arrival(out)
        tries = finish(data_root, out, tmp_path)
        print(f"kill {trial}: killed={p.returncode == -signal.SIGKILL} checkpoint at {at}, finished after {tries} tries")
        assert comparable(json.loads((out / "results.json").read_text())) == \
            comparable(json.loads((ref / "results.json").read_text()))
        assert metrics(out) == metrics(ref)  # every row once, the final one included
        assert not list(out.glob(".*.tmp"))
    assert delivered >= KILL_TRIALS - 1  # the delays fall inside the run (one may land after it ended)


def test_sigkill_while_the_final_files_are_written_keeps_one_final_row(tmp_path, reference):
    data_root, ref, _ = reference
    out = tmp_path / "killed-at-the-end"
    die = ("import os, signal, streamvae.run_directory as L; real = L.save_grids\n"
           "def save_grids(*a, **k):\n    real(*a, **k)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
           "L.save_grids = save_grids")
    p = start(run_argv(data_root, out), tmp_path, prelude=die)
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL and not (out / "results.json").exists()
    assert sum(r["final"] for r in metrics(out)) == 1  # the final row is already there ...
    assert finish(data_root, out, tmp_path) == 1
    assert sum(r["final"] for r in metrics(out)) == 1  # ... and still there once
    assert metrics(out) == metrics(ref)
    p = start(["run", "--resume", str(out), "--data-root", data_root], tmp_path)  # finished: nothing changes
    stdout, _ = p.communicate(timeout=300)
    assert p.returncode == 0 and "finished" in stdout and metrics(out) == metrics(ref)


def test_sigterm_during_the_run_checkpoints_and_exits_130_in_one_line(tmp_path, reference):
    data_root, sig = reference[0], signal.SIGTERM  # Ctrl-C: tests/e2e/test_cli.py (the same handler)
    out = tmp_path / "signalled"
    slow = ("import time, streamvae.learners.reservoir as R; real = R.Reservoir.observe\n"
            "def observe(self, x):\n    time.sleep(0.3)\n    return real(self, x)\nR.Reservoir.observe = observe")
    p = start(run_argv(data_root, out), tmp_path, prelude=slow)
    while not (out / "config.yaml").exists() and p.poll() is None:
        time.sleep(0.01)
    time.sleep(0.4)
    p.send_signal(sig)
    _, err = p.communicate(timeout=300)
    lines = without_banner(err)
    assert p.returncode == 130 and len(lines) == 1 and "checkpoint written" in lines[0], err[-2000:]
    assert (out / "checkpoint.pt").exists() and not (out / "results.json").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_is_one_line_and_status_130(tmp_path, reference, sig):
    data_root = reference[0]
    p = start(run_argv(data_root, tmp_path / "early"), tmp_path)
    time.sleep(0.5)  # the interpreter is up; torch and the data are still loading
    p.send_signal(sig)
    _, err = p.communicate(timeout=300)
    lines = without_banner(err)
    assert p.returncode == 130 and lines == ["stopped: interrupted (Ctrl-C or SIGTERM) before a checkpoint was written"], err[-2000:]
    assert not (tmp_path / "early").exists()
