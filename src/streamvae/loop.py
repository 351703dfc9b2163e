"""``run(cfg)``: build the stream, model, learner and test sets, then one loop over the stream.

Read it top to bottom: for every arrival the learner observes the images (never labels or tasks),
the evaluator scores the model at evaluation points (task ends, which only the evaluator knows, or
every ``eval.every`` arrivals), a checkpoint is written every ``run.checkpoint_every`` arrivals, and
at the end the final evaluation, ``results.json`` and the PNG grids are written.

Ctrl-C is deferred to the end of the current arrival: a checkpoint is written and the run stops
cleanly; ``streamvae run --resume DIR`` continues it and gives the same results as an
uninterrupted run with the same seed.
"""
from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import config as C
from . import native, precision, rundir, threads
from .devices import describe, resolve_device, to_device
from ._version import __version__
from .data.streams import Stream
from .errors import CheckpointError, ConfigError, StreamVAEError, TrainingError
from .evaluation.evaluator import evaluate, evaluate_generation
from .evaluation.fid import feature_classifier
from .evaluation.probe import probe_metrics, probe_training_set
from .registry import get_learner
from .models import build_model
from .utils import (atomic_write_text, load_checkpoint, read_jsonl, save_checkpoint, save_grid, save_titled_grids,
                    write_json, write_jsonl)


class Interrupted(StreamVAEError):
    """Raised after a Ctrl-C once the checkpoint is safely on disk."""


def _eval_points(cfg: C.RunConfig, stream: Stream) -> list[int]:
    """Arrival counts after which the evaluator runs (the last one is the final evaluation)."""
    n = len(stream)
    if cfg.eval.every > 0:
        points = list(range(cfg.eval.every, n, cfg.eval.every))
    else:
        points = [t for t in stream.task_ends() if t < n]
    return sorted(set(points) | {n})


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
    learner = cls(cfg, model, generator, **extra)
    learner.precision = precision.resolve(cfg.precision, device)  # bf16 without native bf16: fp32, one warning
    steps = learner.min_steps_per_arrival()
    if steps == 0:  # nothing would ever train: refuse before any work is done
        capacity = getattr(cfg.memory, "capacity", None)
        held = f" + memory.capacity={capacity}" if capacity is not None else ""
        raise ConfigError(f"learner {cfg.learner.name} would take no optimiser step with these settings "
                          f"(stream.batch_size={cfg.stream.batch_size}{held} is smaller than learner.minibatch="
                          f"{getattr(cfg.learner, 'minibatch', '?')}); lower learner.minibatch or raise the batch size"
                          + (" or the memory" if held else ""))
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


def _eval_generator(cfg: C.RunConfig, arrival: int) -> torch.Generator:
    # independent of training randomness, so evaluation never changes what the learner does
    return torch.Generator(device=resolve_device(cfg.device)).manual_seed(cfg.seed * 1_000_003 + arrival + 17)


def evaluate_point(cfg: C.RunConfig, learner, stream: Stream, test, arrival: int, final: bool) -> dict:
    test = to_device(test, learner.device)  # the test sets are built on the CPU (the same images everywhere)
    k = cfg.eval.iw_samples if final else cfg.eval.curve_iw_samples
    ends = stream.task_ends()
    # tasks completed by this arrival, plus the one in progress (a batch that straddles a boundary
    # does not count its few images of the next task as "seen" until that task's first full batch);
    # at the end of a stream cut short (stream.max_batches) that is the tasks it reached, not all
    tasks_seen = sum(e <= arrival for e in ends) + (arrival not in ends)
    row: dict[str, Any] = {"arrival": arrival, "images_seen": arrival * cfg.stream.batch_size, "final": final,
                           "iw_samples": k, "test_size": int(test.x.shape[0]), "tasks_seen": tasks_seen,
                           "task_ends": ends}
    row.update(evaluate(learner.components(), test, stream.num_tasks, tasks_seen, k,
                        _eval_generator(cfg, arrival), cfg.eval.chunk_rows, learner.mixture_weights(),
                        cfg.eval.elbo_mixture_samples))
    if cfg.eval.probe:  # representation probes on encoder means; labels reach the probe only
        probe_test = (to_device(stream.test_set(cfg.eval, cfg.eval.probe_test_size), learner.device)
                      if cfg.eval.probe_test_size else test)
        probe = probe_metrics(learner.components(), probe_training_set(stream, cfg.eval.probe_train_size,
                                                                        cfg.eval.binarize_seed + 1),
                              probe_test, stream.num_tasks, tasks_seen, cfg.eval.probe_knn,
                              _eval_generator(cfg, arrival + 1_000_000), seed=cfg.seed,
                              features=cfg.eval.probe_features)
        row["per_task"].update(probe.pop("per_task"))
        row.update(probe)
    if cfg.eval.fid and (final or cfg.eval.fid_curve):  # FID / IS with the dataset's feature classifier
        classifier, info = feature_classifier(cfg.stream.datasets, stream.data_root, cfg.eval)
        row.update(evaluate_generation(learner.components(), to_device(stream.test_set(cfg.eval, 0), learner.device),
                                       tasks_seen, cfg.eval,
                                       stream.shape, classifier, info, _eval_generator(cfg, arrival + 2_000_000)))
    sizes = learner.memory_sizes()  # {memory name: stored images}
    row["memory"] = int(sizes.get("memory", sum(sizes.values())))  # all stored images
    row["memory_sizes"] = {k: int(v) for k, v in sizes.items() if k != "memory"} or ({"memory": row["memory"]} if sizes else {})
    row["components"] = len(learner.components())
    row.update(learner.structure())  # e.g. DEMC's number of clusters
    row["steps"] = learner.steps
    return row


def save_grids(cfg: C.RunConfig, learner, stream: Stream, test, run_dir: Path) -> None:
    """samples.png (one block of rows per component), reconstructions.png (original | reconstruction)."""
    shape = stream.shape
    components = learner.components()
    g = torch.Generator(device=learner.device).manual_seed(cfg.seed + 99)
    n = cfg.eval.grid
    per = max(8, n // len(components)) if len(components) > 1 else n
    samples = torch.cat([c.sample(per, g) for c in components])
    save_grid(run_dir / "samples.png", samples.cpu(), shape, nrow=8 if len(components) > 1 else None)
    idx = torch.randperm(len(test.x), generator=g, device=learner.device)[: n // 2]
    x = test.x.to(learner.device)[idx]
    # the component that explains each image best reconstructs it (models without an ELBO, such as
    # the VAE-GAN, have one component)
    best = learner.model.assign(x, 10, g) if len(components) > 1 else torch.zeros(len(x), dtype=torch.long)
    recon = torch.stack([components[int(j)].reconstruct(x[i:i + 1])[0] for i, j in enumerate(best)])
    pairs = torch.stack([x, recon], 1).reshape(-1, x.shape[1])  # original, reconstruction
    save_grid(run_dir / "reconstructions.png", pairs.cpu(), shape, nrow=16)


def save_memory_grid(cfg: C.RunConfig, learner, stream: Stream, run_dir: Path) -> None:
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
    if resume and rundir.is_finished(run_dir):
        return json.loads((run_dir / "results.json").read_text())
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory; choose another --out")
    threads_at_start = torch.get_num_threads()
    stream, learner = build(cfg, data_root)  # before the directory exists: a failed start leaves nothing
    if cfg.progress:
        print(banner(cfg, stream, learner, run_dir, resume), file=sys.stderr, flush=True)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with rundir.RunDirLock(run_dir):
            rundir.remove_temp_files(run_dir)  # left by a writer that was killed mid-write
            if resume and rundir.is_finished(run_dir):  # finished while we were starting
                return json.loads((run_dir / "results.json").read_text())
            return _run_locked(cfg, run_dir, stream, learner, resume, accept_config_change)
    except BaseException:
        if created:
            rundir.remove_if_empty(run_dir)
        raise
    finally:
        threads.install(None)  # the run's load-following thread count ends with it
        if cfg.threads == 0:
            torch.set_num_threads(threads_at_start)


def _run_locked(cfg: C.RunConfig, run_dir: Path, stream: Stream, learner, resume: bool,
                accept_config_change: bool) -> dict:
    n = len(stream)
    final_test = stream.test_set(cfg.eval, cfg.eval.test_size)
    curve_size = cfg.eval.curve_test_size or cfg.eval.test_size
    curve_test = stream.test_set(cfg.eval, curve_size) if curve_size != cfg.eval.test_size else final_test
    points = set(_eval_points(cfg, stream))

    start, wall_before = 0, 0.0
    path = "native" if use_kernels(cfg) else "torch"
    kernel_paths = [[0, path]]  # [first arrival, path] of each stretch of the run
    metrics_path = run_dir / "metrics.jsonl"
    train_path = run_dir / "train.jsonl"  # one line per arrival: the learner's logs (loss, memory sizes, ...)
    config_history: list[dict] = []  # accepted config.yaml edits on resume: {"arrival", "changes"}
    # where the wall time goes (results.json "wall_by_phase_s"): optimiser updates, the rest of observe()
    # (memory selection, expansion tests, binarisation outside train_pass), evaluation points,
    # checkpoints, and the stream + logs; summed over resumed stretches
    phases = dict.fromkeys(("train_steps", "memory_and_events", "evaluation_points", "checkpoints",
                            "stream_and_logs"), 0.0)
    if resume:
        ckpt = load_checkpoint(run_dir / "checkpoint.pt")
        phases.update({k: float(v) for k, v in ckpt.get("phases", {}).items() if k in phases})
        config_history = list(ckpt.get("config_changes", []))
        changes = rundir.config_changes(rundir.saved_config(ckpt, run_dir / "checkpoint.pt"), C.to_dict(cfg))
        rundir.check_changes(changes, accept_config_change, run_dir)
        start, wall_before = restore_checkpoint(learner, ckpt, run_dir / "checkpoint.pt", reapply_hyperparameters=bool(changes))
        if not 0 <= start <= n:
            raise CheckpointError(f"{run_dir / 'checkpoint.pt'}: arrival {start} is outside this stream (0..{n})")
        if changes:  # applied from here on: recorded in config-changes.jsonl, the checkpoints and results.json
            config_history.append(rundir.record_changes(run_dir, start, changes))
        kernel_paths = ckpt.get("kernel_paths", [[0, "native" if ckpt.get("native_kernels") else "torch"]])
        if kernel_paths[-1][1] != path:  # same draws on both paths (fp32 rounding apart): recorded only
            kernel_paths.append([start, path])
        # drop evaluation lines written after the checkpoint, and the final line of a run killed while
        # writing its results: they will be recomputed identically (the final line is written once)
        write_jsonl(metrics_path, [r for r in read_jsonl(metrics_path) if r["arrival"] <= start and not r.get("final")])
        write_jsonl(train_path, [r for r in _read_train_log(train_path) if r["arrival"] <= start])
    else:
        atomic_write_text(run_dir / "config.yaml", C.to_yaml(cfg))
        write_jsonl(metrics_path, [])
        write_jsonl(train_path, [])

    def checkpoint(arrival: int, wall: float) -> None:
        tc = time.perf_counter()
        if getattr(learner, "log", None) is not None:  # events so far (the final one is written at the end)
            write_jsonl(run_dir / "events.jsonl", learner.log)
        save_checkpoint(run_dir / "checkpoint.pt", {
            "config": C.to_dict(cfg), "arrival": arrival, "wall_s": wall, "learner": learner.state_dict(),
            "native_kernels": path == "native", "kernel_paths": kernel_paths, "precision": learner.precision,
            "torch_rng": torch.get_rng_state(), "version": __version__, "config_changes": config_history,
            "phases": dict(phases)})
        phases["checkpoints"] += time.perf_counter() - tc

    stop = {"requested": False, "signal": "Ctrl-C"}

    def on_sigint(signum, frame):  # Ctrl-C and SIGTERM: finish the arrival, checkpoint, stop
        if stop["requested"]:  # a second one stops at once
            raise KeyboardInterrupt
        stop["requested"] = True
        stop["signal"] = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"

    old_handlers = ({s: signal.signal(s, on_sigint) for s in (signal.SIGINT, signal.SIGTERM)}
                    if _main_thread() else {})
    bar = _progress(cfg, start, n)
    live = _tensorboard(cfg, stream, run_dir, start if resume else None)  # None unless cfg.tensorboard
    # threads=0 on the CPU: follow the cores other processes leave free (streamvae.threads)
    governor = threads.ThreadGovernor(torch.get_num_threads()) if cfg.threads == 0 and learner.device.type == "cpu" else None
    threads.install(governor)
    t0 = time.perf_counter()
    train_log = open(train_path, "a")
    try:
        for t in range(start, n):
            threads.poll()
            ta = time.perf_counter()
            batch = stream.batch(t)
            tb, steps_before = time.perf_counter(), learner.train_seconds
            logs = learner.observe(batch.x.to(learner.device))  # images only: labels and tasks stay with the evaluator
            tc, in_steps = time.perf_counter(), learner.train_seconds - steps_before
            phases["train_steps"] += in_steps
            phases["memory_and_events"] += tc - tb - in_steps
            done = t + 1
            train_log.write(json.dumps({"arrival": done, "steps": learner.steps, **_plain(logs)}) + "\n")
            train_log.flush()  # a kill loses at most this line (resume rewrites the file up to its checkpoint)
            phases["stream_and_logs"] += (tb - ta) + (time.perf_counter() - tc)
            if done in points and done < n:
                te = time.perf_counter()
                if bar is not None:
                    bar.set_description(f"{cfg.learner.name}: evaluating")
                row = evaluate_point(cfg, learner, stream, curve_test, done, final=False)
                if bar is not None:
                    bar.set_description(cfg.learner.name)
                    bar.write(_eval_line(row), file=sys.stderr)
                row["wall_s"] = wall_before + time.perf_counter() - t0
                _append(metrics_path, row)
                if live is not None:
                    live.evaluation(row, learner.components(), stream.shape, learner.memory_images())
                phases["evaluation_points"] += time.perf_counter() - te
            if live is not None:
                live.arrival(done, logs)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.1f}" if isinstance(v, float) else v for k, v in logs.items()})
            if cfg.checkpoint_every > 0 and done % cfg.checkpoint_every == 0 and done < n:
                checkpoint(done, wall_before + time.perf_counter() - t0)
            if stop["requested"]:
                checkpoint(done, wall_before + time.perf_counter() - t0)
                raise Interrupted(f"interrupted ({stop['signal']}) after arrival {done}/{n}; checkpoint written. "
                                  f"Continue with: streamvae run --resume {run_dir}")
    finally:
        train_log.close()
        if bar is not None:
            bar.close()
        if live is not None:
            live.close()
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)

    train_wall = wall_before + time.perf_counter() - t0
    if learner.steps == 0:  # nothing was trained: an error, never a finished run with untrained numbers
        raise TrainingError(f"learner {cfg.learner.name} took no optimiser step in {n} arrivals "
                            f"(stream.batch_size={cfg.stream.batch_size}); the memories or batches never filled "
                            f"a minibatch: lower learner.minibatch or raise the batch size or memory")
    # the final checkpoint comes before the final evaluation and writes: a run killed while writing them
    # resumes from here and recomputes the same final row (written once, whatever is interrupted)
    checkpoint(n, train_wall)
    if cfg.progress:
        print(f"final evaluation: k={cfg.eval.iw_samples} on {len(final_test.x)} test images, "
              f"{len(learner.components())} component(s)...", file=sys.stderr, flush=True)
    t_eval = time.perf_counter()
    row = evaluate_point(cfg, learner, stream, final_test, n, final=True)
    if cfg.progress:
        print(f"{_eval_line(row)} ({time.perf_counter() - t_eval:.0f} s)", file=sys.stderr, flush=True)
    row["wall_s"] = train_wall
    phases["final_evaluation"] = time.perf_counter() - t_eval
    _append(metrics_path, row)
    if live is not None:  # reopened: the loop's writer is closed (appends to the same log)
        live = _tensorboard(cfg, stream, run_dir, None)
        live.evaluation(row, learner.components(), stream.shape, learner.memory_images())
        live.close()
    save_grids(cfg, learner, stream, final_test, run_dir)
    save_memory_grid(cfg, learner, stream, run_dir)
    if getattr(learner, "log", None) is not None:  # per-event log of memory learners (sizes, R, expansions)
        write_jsonl(run_dir / "events.jsonl", learner.log)
    results = final_results(cfg, stream, row, train_wall, learner)
    results["wall_by_phase_s"] = {k: round(v, 2) for k, v in phases.items()}  # where the wall time went
    if governor is not None:  # threads=0: how the thread count followed the load (this stretch of the run)
        results["wall_threads"] = {"max": governor.max_threads, "changes": len(governor.changes),
                              "final": governor.threads}
    if len(kernel_paths) > 1:  # resumed on the other path: which arrivals ran where
        results["kernels"] += "; " + ", ".join(f"{p} from arrival {a}" for a, p in kernel_paths)
    if config_history:  # config.yaml edits accepted on resume (--accept-config-change)
        results["config_changes"] = config_history
    write_json(run_dir / "results.json", results)
    return results


def restore_checkpoint(learner, ckpt: dict, path: Path, reapply_hyperparameters: bool = False) -> tuple[int, float]:
    """Load a checkpoint's learner state; returns ``(arrival, wall_s)``. A checkpoint that does not fit
    this learner is one CheckpointError naming the file. ``reapply_hyperparameters``: keep the optimiser
    hyperparameters (lr, betas, ...) of the current config instead of the checkpoint's."""
    fresh = {k: [{h: v for h, v in g.items() if h != "params"} for g in o.param_groups]
             for k, o in learner.optimizers().items()}
    try:
        learner.load_state_dict(ckpt["learner"])
        arrival, wall = int(ckpt["arrival"]), float(ckpt["wall_s"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{path}: does not fit this run ({type(e).__name__}: {first})") from None
    if getattr(learner.cfg, "precision", None) == "auto" and ckpt.get("precision") in ("fp32", "bf16"):
        # auto keeps the precision the run started with (another machine may decide otherwise)
        learner.precision = precision.resolve(ckpt["precision"], learner.device)
    if reapply_hyperparameters:
        for k, o in learner.optimizers().items():
            for group, hyper in zip(o.param_groups, fresh.get(k, [])):
                group.update(hyper)
    return arrival, wall


def final_results(cfg: C.RunConfig, stream: Stream, row: dict, wall: float, learner=None) -> dict:
    keep = {k: v for k, v in row.items() if k not in ("task_ends", "final")}
    device = describe(resolve_device(cfg.device))
    stretches = getattr(learner, "devices", [])
    if len(stretches) > 1:  # resumed on another device: which arrivals ran where
        device += "; " + ", ".join(f"{d} from arrival {a}" for a, d in stretches)
    return {"name": cfg.name, "learner": cfg.learner.name, "budget": cfg.budget, "seed": cfg.seed,
            "datasets": list(cfg.stream.datasets), "order": cfg.stream.order, "arrivals": len(stream),
            "task_names": stream.task_names, **keep, "train_wall_s": wall,
            "kernels": native.status(use_kernels(cfg)), "device": device,
            "precision": getattr(learner, "precision", "fp32")}


def _append(path: Path, row: dict) -> None:
    rows = read_jsonl(path) + [row]
    write_jsonl(path, rows)  # rewrite atomically: a crash never leaves half a line


def _tensorboard(cfg: C.RunConfig, stream: Stream, run_dir: Path, purge_step: int | None):
    if not cfg.tensorboard:
        return None
    from .live import TensorBoardLog

    return TensorBoardLog(run_dir / "tensorboard", cfg.eval.grid, cfg.seed, stream.task_names, purge_step)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _progress(cfg: C.RunConfig, start: int, n: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=n, initial=start, desc=f"{cfg.learner.name}", unit="batch", file=sys.stderr,
                dynamic_ncols=True)


# -- what a run prints: the start banner and one line per evaluation ---------------------------------

_STEP_S = {"vae": (4.5e-3, 0.3e-3), "mixture": (4.5e-3, 0.3e-3)}  # s per step: base + per MC sample
_UPDATE_S = {784: 0.35, 3072: 0.7}  # s per full-width VAE-GAN update, by image size


def estimate_seconds(cfg: C.RunConfig, learner, steps: int, x_dim: int) -> float:
    """A rough training time on 2 CPU cores (fp32, native path), from BENCHMARKS.md's per-step costs:
    a 64-image VAE step costs about 4.5 ms + 0.3 ms per Monte-Carlo sample, a full-width 28x28 VAE-GAN
    update about 0.35 s (it scales with the width squared). Evaluation, selection events and the
    machine's own speed come on top: the progress bar's ETA is the measured figure."""
    kind = type(learner).model_kind
    if kind == "vaegan":
        per = _UPDATE_S.get(x_dim, 0.35 * x_dim / 784) * getattr(cfg.model, "width", 1.0) ** 2
    else:
        base, per_sample = _STEP_S.get(kind, _STEP_S["vae"])
        samples = getattr(cfg.learner, "elbo_samples", 1)
        per = (base + per_sample * samples) * getattr(cfg.learner, "minibatch", 64) / 64
    if getattr(learner, "precision", "fp32") == "bf16":  # BENCHMARKS.md: 1.7x (MLP, 50 samples), 1.7x (VAE-GAN)
        per /= 1.7
    return steps * per


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
    steps = learner.planned_steps(len(stream))
    if steps:
        est = estimate_seconds(cfg, learner, steps, stream.x_dim)
        lines.append(f"  about {steps:,} optimiser steps: roughly {_duration(est)} of training on 2 CPU cores "
                     "(a rough estimate; evaluation extra; the progress bar shows the measured ETA)")
    if cfg.budget == "paper":
        lines.append("  budget paper is the released protocol (meant for a GPU); --set budget=fast runs in well "
                     "under an hour on 2 cores")
    return "\n".join(lines)


def _eval_line(row: dict) -> str:
    ll = next((k for k in row if k.startswith("ll_iw") and not k.endswith(("_all_tasks", "_mixture", "_selected"))
               and isinstance(row[k], float)), None)
    parts = [f"evaluation at arrival {row['arrival']}:"]
    if ll:
        parts.append(f"{ll} {row[ll]:.2f}")
    if isinstance(row.get("recon_sse"), float):
        parts.append(f"recon_sse {row['recon_sse']:.2f}")
    parts.append(f"memory {row.get('memory', 0)}, components {row.get('components', 1)}")
    return " ".join(parts)


def _plain(logs: dict) -> dict:
    return {k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in logs.items()}


def _read_train_log(path: Path) -> list[dict]:
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
