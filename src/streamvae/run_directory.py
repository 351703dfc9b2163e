"""``RunDirectory``: one object owns a run directory's life, so the loop only trains and evaluates.

It holds the lock (``rundir.RunDirLock``) for the run's lifetime, removes the leftovers of a killed
writer, starts the files (``config.yaml``, ``metrics.jsonl``, ``train.jsonl``) or, on resume,
restores the learner from ``checkpoint.pt`` and cuts the logs back to it (with the config
history: accepted ``config.yaml`` edits), times the phases of the run, writes checkpoints, and at
the end the grids, ``events.jsonl`` and ``results.json`` (last, atomically: a finished run is one
that has it). A directory that a failed start created is removed again.

    with RunDirectory(run_dir, cfg) as rd:
        start = rd.start(learner, len(stream), resume, accept_config_change)
        ...
        rd.checkpoint(learner, arrival)
        rd.finish(learner, stream, test, results)
"""
from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from pathlib import Path
from typing import TextIO

import torch

from . import config as C
from . import grids, rundir
from ._version import __version__
from .errors import CheckpointError, ConfigError
from .utils import (atomic_write_text, load_checkpoint, read_jsonl, save_checkpoint, save_titled_grids, stretches,
                    write_json, write_jsonl)

# where the wall time goes (results.json "wall_by_phase_s"): optimiser updates, the rest of observe()
# (memory selection, expansion tests, binarisation outside train_pass), evaluation points,
# checkpoints, and the stream + logs; summed over resumed stretches
PHASES = ("train_steps", "memory_and_events", "evaluation_points", "checkpoints", "stream_and_logs")


class RunDirectory:
    """The files of one run (see the module docstring); ``kernels``: the path this stretch runs on."""

    def __init__(self, path: str | Path, cfg: C.RunConfig, kernels: str):
        self.path = Path(path)
        self.cfg = cfg
        self.kernel_paths = [[0, kernels]]  # [first arrival, path] of each stretch of the run
        self.config_history: list[dict] = []  # accepted config.yaml edits on resume: {"arrival", "changes"}
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.wall_before = 0.0  # wall time of earlier stretches (resume)
        self._t0 = time.perf_counter()
        self._created = False
        self._lock = rundir.RunDirLock(self.path)
        self._train_log: TextIO | None = None

    # -- the directory's life -------------------------------------------------------------------
    def __enter__(self) -> "RunDirectory":
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a run directory; choose another --out")
        self._created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.__enter__()  # a second writer fails here at once
        except BaseException:
            self._remove_if_created()
            raise
        rundir.remove_temp_files(self.path)  # left by a writer that was killed mid-write
        return self

    def __exit__(self, kind, error, tb) -> None:
        if self._train_log is not None:
            self._train_log.close()
        self._lock.__exit__(kind, error, tb)
        if error is not None:
            self._remove_if_created()

    def _remove_if_created(self) -> None:
        if self._created:
            rundir.remove_if_empty(self.path)

    @property
    def finished(self) -> bool:
        return rundir.is_finished(self.path)

    def results(self) -> dict:
        return json.loads((self.path / "results.json").read_text())

    def start(self, learner, n: int, resume: bool, accept_config_change: bool) -> int:
        """Fresh files, or the learner restored from the checkpoint; returns the arrival to start from."""
        metrics, train = self.path / "metrics.jsonl", self.path / "train.jsonl"
        start = 0
        if resume:
            start = self._resume(learner, n, accept_config_change)
            # drop evaluation lines written after the checkpoint, and the final line of a run killed while
            # writing its results: they will be recomputed identically (the final line is written once)
            write_jsonl(metrics, [r for r in read_jsonl(metrics) if r["arrival"] <= start and not r.get("final")])
            write_jsonl(train, [r for r in read_train_log(train) if r["arrival"] <= start])
        else:
            rundir.refuse_existing_run(self.path)  # a run started beside this one may have finished meanwhile
            atomic_write_text(self.path / "config.yaml", C.to_yaml(self.cfg))
            write_jsonl(metrics, [])
            write_jsonl(train, [])
        self._train_log = open(train, "a")  # one line per arrival: the learner's logs
        self._t0 = time.perf_counter()
        return start

    def _resume(self, learner, n: int, accept_config_change: bool) -> int:
        path = self.path / "checkpoint.pt"
        ckpt = load_checkpoint(path)
        self.phases.update({k: float(v) for k, v in ckpt.get("phases", {}).items() if k in self.phases})
        self.config_history = list(ckpt.get("config_changes", []))
        changes = rundir.config_changes(rundir.saved_config(ckpt, path), C.to_dict(self.cfg))
        rundir.check_changes(changes, accept_config_change, self.path)
        start, self.wall_before = restore_checkpoint(learner, ckpt, path, reapply_hyperparameters=bool(changes))
        if not 0 <= start <= n:
            raise CheckpointError(f"{path}: arrival {start} is outside this stream (0..{n})")
        if changes:  # applied from here on: recorded in config-changes.jsonl, the checkpoints and results.json
            self.config_history.append(rundir.record_changes(self.path, start, changes))
        path_now = self.kernel_paths[0][1]
        self.kernel_paths = ckpt.get("kernel_paths", [[0, "native" if ckpt.get("native_kernels") else "torch"]])
        if self.kernel_paths[-1][1] != path_now:  # same draws on both paths (fp32 rounding apart): recorded only
            self.kernel_paths.append([start, path_now])
        return start

    # -- during the run -------------------------------------------------------------------------
    def wall(self) -> float:
        """Wall seconds of the run so far, earlier stretches included."""
        return self.wall_before + time.perf_counter() - self._t0

    @contextlib.contextmanager
    def timed(self, phase: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - t

    def observe(self, learner, x: torch.Tensor) -> dict:
        """``learner.arrive(x)``, its time split into optimiser updates and the rest of ``observe``."""
        t, before = time.perf_counter(), learner.train_seconds
        logs = learner.arrive(x)
        in_steps = learner.train_seconds - before
        self.phases["train_steps"] += in_steps
        self.phases["memory_and_events"] += time.perf_counter() - t - in_steps
        return logs

    def log_arrival(self, learner, logs: dict) -> None:
        assert self._train_log is not None, "start() opens train.jsonl"
        with self.timed("stream_and_logs"):
            plain = {k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in logs.items()}
            self._train_log.write(json.dumps({"arrival": learner.arrivals, "steps": learner.steps, **plain}) + "\n")
            self._train_log.flush()  # a kill loses at most this line (resume rewrites the file up to its checkpoint)

    def append_row(self, row: dict) -> None:
        rows = read_jsonl(self.path / "metrics.jsonl") + [row]
        write_jsonl(self.path / "metrics.jsonl", rows)  # rewrite atomically: a crash never leaves half a line

    def checkpoint(self, learner, arrival: int, wall: float | None = None) -> None:
        with self.timed("checkpoints"):
            if learner.log is not None:  # events so far (the final one is written at the end)
                write_jsonl(self.path / "events.jsonl", learner.log)
            save_checkpoint(self.path / "checkpoint.pt", {
                "config": C.to_dict(self.cfg), "arrival": arrival, "wall_s": self.wall() if wall is None else wall,
                "learner": learner.state_dict(), "native_kernels": self.kernel_paths[-1][1] == "native",
                "kernel_paths": self.kernel_paths, "precision": learner.precision, "torch_rng": torch.get_rng_state(),
                "version": __version__, "config_changes": self.config_history, "phases": dict(self.phases)})

    # -- the end ----------------------------------------------------------------------------------
    def finish(self, learner, stream, test, results: dict) -> dict:
        """Grids, ``events.jsonl``, then ``results.json`` (written last: the run is finished)."""
        if len(self.kernel_paths) > 1:  # resumed on the other path: which arrivals ran where
            results["kernels"] += "; " + stretches(self.kernel_paths)
        if self.config_history:  # config.yaml edits accepted on resume (--accept-config-change)
            results["config_changes"] = self.config_history
        save_grids(self.cfg, learner, stream, test, self.path)
        save_memory_grid(self.cfg, learner, stream, self.path)
        if learner.log is not None:  # per-event log of memory learners (sizes, R, expansions)
            write_jsonl(self.path / "events.jsonl", learner.log)
        write_json(self.path / "results.json", results)
        return results


class StopRequests:
    """Ctrl-C and SIGTERM during the block set ``requested`` (the loop checkpoints and stops after the
    arrival); a second one stops at once. Off the main thread signals stay as they are."""

    def __init__(self):
        self.requested = False
        self.signal = "Ctrl-C"
        self._old: dict = {}

    def _on_signal(self, signum, frame):
        if self.requested:  # a second one stops at once
            raise KeyboardInterrupt
        self.requested = True
        self.signal = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)


def restore_checkpoint(learner, ckpt: dict, path: Path, reapply_hyperparameters: bool = False) -> tuple[int, float]:
    """Load a checkpoint's learner state; returns ``(arrival, wall_s)``. A checkpoint that does not fit
    this learner is one CheckpointError naming the file. ``reapply_hyperparameters``: keep the optimiser
    hyperparameters (lr, betas, ...) of the current config instead of the checkpoint's."""
    fresh = {k: [{h: v for h, v in g.items() if h != "params"} for g in o.param_groups]
             for k, o in learner.optimizers().items()}
    try:
        state = ckpt["learner"]
        if "precision" not in state and "precision" in ckpt:  # written before the learner saved its own
            state = {**state, "precision": ckpt["precision"]}
        learner.load_state_dict(state)
        arrival, wall = int(ckpt["arrival"]), float(ckpt["wall_s"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{path}: does not fit this run ({type(e).__name__}: {first})") from None
    if reapply_hyperparameters:
        for k, o in learner.optimizers().items():
            for group, hyper in zip(o.param_groups, fresh.get(k, [])):
                group.update(hyper)
    return arrival, wall


def save_grids(cfg: C.RunConfig, learner, stream, test, run_dir: Path) -> None:
    """samples.png (one labelled row per component), reconstructions.png (input rows above their reconstructions)."""
    shape = stream.shape
    components = learner.components()
    g = torch.Generator(device=learner.device).manual_seed(cfg.seed + 99)
    n = cfg.eval.grid
    per = max(8, n // len(components)) if len(components) > 1 else n
    samples = [c.sample(per, g).cpu() for c in components]
    title = grids.sample_title(cfg.learner.name, cfg.name, cfg.budget, len(components), learner.steps)
    rows = grids.sample_rows(samples, grids.final_shares(run_dir), grids.component_steps(run_dir, len(components)),
                             learner.steps)
    grids.save_labelled_rows(run_dir / "samples.png", title, rows, shape)
    idx = torch.randperm(len(test.x), generator=g, device=learner.device)[: n // 2]
    x = test.x.to(learner.device)[idx]
    # the component that explains each image best reconstructs it (models without an ELBO, such as
    # the VAE-GAN, have one component)
    best = learner.model.assign(x, 10, g) if len(components) > 1 else torch.zeros(len(x), dtype=torch.long)
    recon = torch.stack([components[int(j)].reconstruct(x[i:i + 1])[0] for i, j in enumerate(best)])
    rows = [(label, images[i:i + 16].cpu()) for i in range(0, len(x), 16)
            for label, images in (("input", x), ("reconstruction", recon))]  # each input row above its reconstructions
    grids.save_labelled_rows(run_dir / "reconstructions.png", f"reconstructions: {cfg.learner.name}, test images "
                             "(each by the component that explains it best)", rows, shape)


def save_memory_grid(cfg: C.RunConfig, learner, stream, run_dir: Path) -> None:
    """memory.png: a seeded sample (in stored order) of what each memory holds, one titled block each."""
    memories = learner.memory_images()
    if not memories:
        return
    g = torch.Generator().manual_seed(cfg.seed + 98)
    blocks = []
    for name, x in memories.items():
        idx = torch.randperm(len(x), generator=g)[: cfg.eval.grid].sort().values
        blocks.append((f"{name}: {len(x)} stored, {len(idx)} shown", x[idx.to(x.device)].cpu()))
    save_titled_grids(run_dir / "memory.png", blocks, stream.shape, nrow=16)


def read_train_log(path: Path) -> list[dict]:
    """train.jsonl rows; a half-written last line (a kill mid-write) is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows
