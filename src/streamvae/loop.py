"""``run(cfg)``: build the stream, model, learner and test sets, then one loop over the stream.

Read it top to bottom: for every arrival the learner observes the images (never labels or tasks),
the evaluator scores the model at evaluation points (task ends, which only the evaluator knows, or
every ``eval.every`` arrivals), a checkpoint is written every ``run.checkpoint_every`` arrivals, and
at the end the final evaluation, ``results.json`` and the PNG grids are written. The run directory's
files are ``RunDirectory``'s (``run_directory.py``); the progress bar, TensorBoard and the thread
follower are observers (``observers.py``); an evaluation row is ``evaluation.points``'.

Ctrl-C is deferred to the end of the current arrival: a checkpoint is written and the run stops
cleanly; ``streamvae run --resume DIR`` continues it and gives the same results as an
uninterrupted run with the same seed.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from . import config as C
from . import costs, native
from .data.streams import Stream
from .devices import describe, resolve_device
from .errors import ConfigError, Interrupted, TrainingError
from .evaluation.points import eval_points, evaluate_point
from .models import build_model
from .observers import Observers
from .registry import get_learner
from .run_directory import RunDirectory, StopRequests, restore_checkpoint
from .sizes import memory_capacities
from .utils import stretches

__all__ = ["run", "build", "use_kernels", "evaluate_point", "restore_checkpoint", "final_results", "banner"]


def run(cfg: C.RunConfig, run_dir: str | Path, data_root: str | None = None, resume: bool = False,
        accept_config_change: bool = False) -> dict:
    """Train on the whole stream (or continue from ``run_dir/checkpoint.pt``) and evaluate.

    Everything that can be checked (config, data, stream length) is checked before the run directory
    is created; the directory is then locked for the run's lifetime (a second writer fails at once).
    ``resume`` continues with ``cfg``, which must equal the checkpoint's config outside the
    run-environment fields unless ``accept_config_change`` (the change is then recorded). Resuming a
    finished run returns its ``results.json`` and changes nothing.
    """
    run_dir = Path(run_dir)
    if resume and (run_dir / "results.json").is_file():
        return RunDirectory(run_dir, cfg, "").results()
    stream, learner = build(cfg, data_root)  # before the directory exists: a failed start leaves nothing
    print(banner(cfg, stream, learner, run_dir, resume), file=sys.stderr, flush=True)  # also with --no-progress
    n, points = len(stream), set(eval_points(cfg, stream))
    final_test = stream.test_set(cfg.eval, cfg.eval.test_size)
    curve_size = cfg.eval.curve_test_size or cfg.eval.test_size
    curve_test = stream.test_set(cfg.eval, curve_size) if curve_size != cfg.eval.test_size else final_test
    with RunDirectory(run_dir, cfg, "native" if use_kernels(cfg) else "torch") as rd, StopRequests() as stop:
        if resume and rd.finished:  # finished while we were starting
            return rd.results()
        start = rd.start(learner, n, resume, accept_config_change)
        watch = Observers.for_run(cfg, learner, stream, run_dir, start, resume, points)
        try:
            for t in range(start, n):
                with rd.timed("stream_and_logs"):
                    x = stream.batch(t).x.to(learner.device)  # images only: labels and tasks stay with the evaluator
                logs = rd.observe(learner, x)  # learner.arrive(x): the arrival is counted, then observed
                rd.log_arrival(learner, logs)
                watch.after_arrival(learner, t + 1, logs)
                if t + 1 in points and t + 1 < n:
                    with rd.timed("evaluation_points"):
                        row = evaluate_point(cfg, learner, stream, curve_test, t + 1, False, watch.between_chunks)
                        rd.append_row({**row, "wall_s": rd.wall()})
                        watch.after_evaluation(learner, row)
                if stop.requested or (cfg.checkpoint_every > 0 and (t + 1) % cfg.checkpoint_every == 0 and t + 1 < n):
                    rd.checkpoint(learner, t + 1)
                if stop.requested:
                    raise Interrupted(f"interrupted ({stop.signal}) after arrival {t + 1}/{n}; checkpoint written. "
                                      f"Continue with: streamvae run --resume {run_dir}")
            if learner.steps == 0:  # nothing was trained: an error, never a finished run with untrained numbers
                raise TrainingError(f"learner {cfg.learner.name} took no optimiser step in {n} arrivals "
                                    f"(stream.batch_size={cfg.stream.batch_size}); the memories or batches never "
                                    "filled a minibatch: lower learner.minibatch or raise the batch size or memory")
            # the final checkpoint comes before the final evaluation and writes: a run killed while writing them
            # resumes from here and recomputes the same final row (written once, whatever is interrupted)
            train_wall = rd.wall()
            rd.checkpoint(learner, n, train_wall)
            with rd.timed("final_evaluation"):
                row = {**evaluate_point(cfg, learner, stream, final_test, n, True, watch.between_chunks),
                       "wall_s": train_wall}
            rd.append_row(row)
            watch.after_evaluation(learner, row)
            results = {**final_results(cfg, stream, row, train_wall, learner),
                       "wall_by_phase_s": {k: round(v, 2) for k, v in rd.phases.items()}}  # where the wall time went
            watch.at_end(results)  # observers may add to it (the thread follower: wall_threads)
            return rd.finish(learner, stream, final_test, results)
        finally:
            watch.at_end(None)


def build(cfg: C.RunConfig, data_root: str | None):
    """Everything a run needs, deterministically from ``cfg.seed``."""
    device = resolve_device(cfg.device)  # device=cuda without CUDA: a ConfigError before anything is written
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    native_path = use_kernels(cfg)
    if cfg.eval.fid and cfg.eval.fid_inception:  # a wrong Inception file is refused before training, not after
        from .evaluation.fid import verify_inception

        verify_inception(cfg.eval.fid_inception, cfg.eval.fid_inception_sha256)
    stream = Stream(cfg.stream, data_root=data_root, seed=cfg.seed)
    if len(stream) == 0:  # a batch larger than the stream: no arrival at all
        images = len(stream.labels)
        raise ConfigError(f"stream.batch_size={cfg.stream.batch_size} is larger than the stream ({images} training "
                          f"images of {', '.join(cfg.stream.datasets)}"
                          + (f" with stream.samples_per_class={cfg.stream.samples_per_class}"
                             if cfg.stream.samples_per_class else "") + "): no arrival would be made")
    torch.manual_seed(cfg.seed)  # model initialisation
    cls = get_learner(cfg.learner.name)
    model = build_model(cfg.model, stream.x_dim, kind=cls.model_kind, seed=cfg.seed,
                        shape=stream.shape, native=native_path)
    model.to(device)  # initialised on the CPU (the same weights on every device), then moved
    generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # the learner's draws, on its device
    # needs_dataset: the learner's __init__ takes dataset= (every training image), which Learner's does not
    extra: dict[str, Any] = {"dataset": stream.training_images().to(device)} if cls.needs_dataset else {}
    learner = cls(cfg, model, generator, **extra)  # resolves its precision for this device
    if learner.min_steps_per_arrival() == 0:  # nothing would ever train: refuse before any work is done
        held = "".join(f" + {k}={v}" for k, v in memory_capacities(cfg.memory).items())
        raise ConfigError(f"learner {cfg.learner.name} would take no optimiser step with these settings "
                          f"(stream.batch_size={cfg.stream.batch_size}"
                          + held + " never fill a minibatch); "
                          "lower learner.minibatch or raise the batch size" + (" or the memory" if held else ""))
    return stream, learner


def use_kernels(cfg: C.RunConfig) -> bool:
    """``cfg.kernels`` resolved to the models' ``native`` flag: ``torch`` -> False, ``auto`` -> whether
    the native library builds here, ``native`` -> True or a ConfigError. Both paths draw the same
    noise (torch.randn) and compute the same terms; checkpoints and results.json record the path.
    The kernels are the CPU path: a CUDA run uses the torch path."""
    if resolve_device(cfg.device).type != "cpu":
        if cfg.kernels == "native":
            raise ConfigError("kernels=native is the CPU path and this run is on CUDA; use kernels=auto or "
                              "kernels=torch (or device=cpu)")
        return False
    if cfg.kernels == "torch":
        return False
    if native.library() is None:
        if cfg.kernels == "native":
            raise ConfigError(f"kernels=native but the native library cannot be built here ({native.error()}); "
                              "use kernels=auto or kernels=torch")
        return False
    return True



def final_results(cfg: C.RunConfig, stream: Stream, row: dict, wall: float, learner) -> dict:
    """results.json: the run, the final row (without the evaluator's bookkeeping) and how it ran."""
    keep = {k: v for k, v in row.items() if k not in ("task_ends", "final")}
    device = describe(learner.device)
    if len(learner.devices) > 1:  # resumed on another device: which arrivals ran where
        device += "; " + stretches(learner.devices)
    return {"name": cfg.name, "learner": cfg.learner.name, "method": type(learner).method_name(cfg),
            "budget": cfg.budget, "seed": cfg.seed,
            "datasets": list(cfg.stream.datasets), "order": cfg.stream.order, "arrivals": len(stream),
            "task_names": stream.task_names, **keep, "train_wall_s": wall,
            "kernels": native.status(use_kernels(cfg)), "device": device,
            **precision_record(learner)}


def precision_record(learner) -> dict:
    """results.json's precision: ``fp32`` or ``bf16``; a run that changed precision on resume (bf16 carried
    to a CPU without bf16 instructions) says ``bf16/fp32`` and lists from which arrival each ran."""
    used = sorted({p for _, p in learner.precisions})
    out: dict[str, object] = {"precision": "/".join(used)}
    if len(used) > 1:
        out["precisions"] = [list(p) for p in learner.precisions]
    return out



# -- what a run prints: the start banner and one line per evaluation ---------------------------------

def banner(cfg: C.RunConfig, stream: Stream, learner, run_dir: Path, resume: bool) -> str:
    """The start banner: where the run writes, what it runs, on which data, and about how long."""
    from .data.datasets import locate

    sources = []
    for name in cfg.stream.datasets:
        folder, source = locate(name, stream.data_root)
        sources.append(f"{name} ({source}: {folder})")
    lines = [f"streamvae {'resume' if resume else 'run'}: {cfg.name} -> {run_dir}",
             f"  learner {cfg.learner.name}, budget {cfg.budget}, seed {cfg.seed}, {len(stream)} arrivals of "
             f"{cfg.stream.batch_size} images; data: {', '.join(sources)}",
             f"  precision {learner.precision}, threads {cfg.threads or 'auto (follows the free cores)'}"]
    lines += costs.banner_lines(cfg, learner, len(stream), len(eval_points(cfg, stream)), stream.x_dim)
    if cfg.budget == "paper":
        lines.append("  budget paper is the released protocol (meant for a GPU); --set budget=fast runs in well "
                     "under an hour on 2 cores")
    return "\n".join(lines)
