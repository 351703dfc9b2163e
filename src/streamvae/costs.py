"""How long a run takes: one cost model for every phase that ``results.json``'s ``wall_by_phase_s`` records.

The start banner, the README and BENCHMARKS.md all quote :func:`estimate` (BENCHMARKS.md, "The cost
model", checks it against the measured phases of whole runs). Each phase is a count the config fixes
times a unit cost measured on the 2-core Intel Xeon (AVX512-BF16, no AMX) of BENCHMARKS.md, fp32, native
path, for the threads the run will use (1, or 2 and more: more than two threads were never measured):

* ``train_steps``: optimiser steps (``learner.planned_steps``) x the cost of one 64-image step of an
  S-sample bound (measured at S = 1, 10, 50; log-log interpolation between them), or of one VAE-GAN update;
* ``memory_and_events``: Dynamic-OCM's expansion tests (the k-sample bound of every component on the
  STM + LTM at every selection event); the rest of ``observe()`` (selection, binarisation) is small;
* ``evaluation_points`` and ``final_evaluation``: the k-sample bound of every component on the test
  images (cost per image x sample x component) plus the representation probes;
* ``checkpoints`` and ``stream_and_logs``: per checkpoint and per arrival.

The unit costs are those of the calibration runs: one thread beside another busy process (the way most
runs here were made), or two threads on an idle machine. A run beside heavier load takes longer; the
progress bar's ETA is the measured figure. CUDA has no measured unit costs for these models: no estimate.

Other machines differ (the 2-core AMD EPYC's bf16 steps took 2x these units): :func:`calibrate` times the
run's own training step here and scales the compute phases by it, for the banner and ``reproduce --dry-run``.

    est = estimate(cfg, learner, arrivals=len(stream), threads=1)
    est.total_s, est.phases["train_steps"], est.describe()
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# one 64-image step of an S-sample bound (ELBO or IWAE), ms, by threads -> {S: ms}. Sources (BENCHMARKS.md):
# 1 thread: 2.94 ms (1 sample, "Small steps"), 9.9 ms (10 samples: OCM fast 461.5 s / 46,620 steps, one
# thread beside a run), 30.4 ms (50 samples: bench_vae.py --threads 1, 29.6-32.9 ms); 2 threads idle:
# 2.06 ms, 6.2 ms (1.6x the one-thread 10-sample step, between the 1- and 50-sample ratios), 17.5 ms (16.5-19.2)
STEP_MS: dict[int, dict[int, float]] = {1: {1: 2.94, 10: 9.9, 50: 30.4}, 2: {1: 2.06, 10: 6.2, 50: 17.5}}
# the importance-weighted bound: us per (image x sample x component); 1 thread beside a run: the final
# evaluations of OCM fast (39 s for 10,000 x 1000 x 1 incl. probes) and Dynamic-OCM fast/paper
# (416 s and 474 s for 10 components); 2 threads idle: bench_vae.py, 17.7 s per 10,000 images at k = 1000
IW_US: dict[int, float] = {1: 3.6, 2: 1.9}
PROBE_S: dict[int, float] = {1: 3.0, 2: 2.0}  # probes at one evaluation point, 5,000 training images (scaled by size)
VAEGAN_UPDATE_S = {784: 0.35, 3072: 0.7}  # one full-width VAE-GAN update at 2 threads, by image size (x width^2)
BF16_SPEEDUP = 1.7  # the 50-sample step and the VAE-GAN update on AMD's AVX512-BF16 (bf16 on Intel without AMX: 0.59x)
CHECKPOINT_S = 0.05  # one checkpoint (a few MB, atomic write)
ARRIVAL_S = 0.0005  # the stream and the logs, per arrival
# Dynamic-OCM's mixture over the stream: the released test (``both``) fires early and reaches K_max in
# the first third of Split Fashion (RESULTS.md: 18..297 at fast, 99..756 at paper), so the mean K over
# the expansion tests is about 0.85 K_max; ``drop`` fires at class boundaries only (0.5 K_max)
MEAN_K_FRACTION = {"both": 0.85, "drop": 0.5}


@dataclass
class Estimate:
    """A run's estimated wall time by phase (seconds; the keys of ``wall_by_phase_s``)."""

    phases: dict[str, float]
    threads: int
    machine: str = "2-core Intel Xeon (BENCHMARKS.md), fp32"
    notes: list[str] = field(default_factory=list)
    step_s: float | None = None  # the unit cost of one training step this estimate used (VAE kinds)
    measured_step_s: float | None = None  # that step timed on this machine (:func:`calibrate`), if it was
    untimed: str = ""  # why it was not, where it could have been ("the machine is busy: load 2.1 on 2 cores")

    @property
    def total_s(self) -> float:
        return sum(self.phases.values())

    def describe(self) -> str:
        """``about 1.3 h (training steps 1.1 h, memory and expansion tests 12 min, evaluation 6 min)``."""
        p = self.phases
        parts = [f"training steps {duration(p['train_steps'])}"]
        if p["memory_and_events"] >= 1:
            parts.append(f"memory and expansion tests {duration(p['memory_and_events'])}")
        parts.append(f"evaluation {duration(p['evaluation_points'] + p['final_evaluation'])}")
        return f"about {duration(self.total_s)} ({', '.join(parts)})"


def duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2.6 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def step_ms(samples: int, threads: int) -> float:
    """One 64-image step of an ``samples``-sample bound, ms (log-log interpolation of :data:`STEP_MS`)."""
    table = STEP_MS[min(max(threads, 1), 2)]
    xs = sorted(table)
    s = min(max(samples, xs[0]), xs[-1])
    for lo, hi in zip(xs, xs[1:]):
        if s <= hi:
            w = math.log(s / lo) / math.log(hi / lo)
            return math.exp((1 - w) * math.log(table[lo]) + w * math.log(table[hi]))
    return table[xs[-1]]  # pragma: no cover


def _iw_seconds(images: float, k: int, components: float, threads: int) -> float:
    return images * k * components * IW_US[min(max(threads, 1), 2)] * 1e-6


def _probe_seconds(cfg: Any, threads: int, components: int) -> float:
    if not cfg.eval.probe:
        return 0.0
    size = cfg.eval.probe_train_size or 60000
    return PROBE_S[min(max(threads, 1), 2)] * (size / 5000) * (1 + 0.1 * (components - 1))


def _events(cfg: Any, arrivals: int) -> int:
    """Selection events of an OCM-family learner: one each time the STM passes its capacity."""
    b, cap = cfg.stream.batch_size, getattr(cfg.memory, "stm_capacity", 0)
    return (arrivals * b) // (cap + b) if cap else 0


CALIBRATED_KINDS = ("vae", "mixture", "vaegan", "cndpm", "limix")  # the model kinds whose unit costs are measured

# CN-DPM (AMD EPYC with AVX512-BF16, 1 thread beside another run, fp32, 2026-12-06; docs/peers.md): a
# sleep step (batch 50) 2.2-3.0 ms (events.jsonl s_per_1000_steps); the wake 1.6-1.8 ms per arrival and
# expert; the k-sample bound on the native path about 2 us per image x sample x expert (final evaluations:
# 1,164 s for 10,000 x 1000 x 54, 284-289 s for 2,000 x 1000 x 55, probes included); the torch-path
# ELBOs of the evaluation (CN-DPM's 16-sample estimator, the 10-sample choice of reconstructions)
# about 10 us per image x sample x expert. Two threads were not measured: the same unit costs.
CNDPM_SLEEP_MS = 2.5
CNDPM_WAKE_MS = 1.7
CNDPM_IW_US = 2.0
CNDPM_ELBO_US = 10.0
CNDPM_CHECKPOINT_S = 0.15  # one checkpoint of about 50 experts (40 MB)


def _cndpm_estimate(cfg: Any, learner: Any, arrivals: int, threads: int, test_images: int,
                    eval_points: int) -> Estimate:
    """CN-DPM: one sleep per ``stm_capacity`` images (every image to the STM: what the released
    ``log_alpha`` does on Fashion-MNIST, so an upper bound elsewhere), the wake over the experts so far,
    and every evaluation over all experts."""
    c, ev = cfg.learner, cfg.eval
    sleeps = arrivals * cfg.stream.batch_size // cfg.memory.stm_capacity
    if c.max_experts:
        sleeps = min(sleeps, c.max_experts)
    experts = max(1, sleeps)
    final_images = ev.test_size or test_images
    curve_images = ev.curve_test_size or final_images
    points = max(0, eval_points - 1)
    elbo_draws = ev.elbo_mixture_samples + 10  # CN-DPM's estimator + the reconstructions' choice

    def evaluation(images: int, k: int, k_experts: float) -> float:
        return (images * k * (k_experts + 1) * CNDPM_IW_US * 1e-6 + images * elbo_draws * k_experts
                * CNDPM_ELBO_US * 1e-6 + _probe_seconds(cfg, threads, round(k_experts)))

    phases = {
        "train_steps": sleeps * c.sleep_steps * CNDPM_SLEEP_MS * 1e-3 + arrivals * experts / 2 * CNDPM_WAKE_MS * 1e-3,
        "memory_and_events": 0.0,
        "evaluation_points": points * evaluation(curve_images, ev.curve_iw_samples, experts / 2),
        "checkpoints": (arrivals // cfg.checkpoint_every if cfg.checkpoint_every else 1) * CNDPM_CHECKPOINT_S,
        "stream_and_logs": arrivals * ARRIVAL_S,
        "final_evaluation": evaluation(final_images, ev.iw_samples, experts),
    }
    return Estimate(phases, threads, machine="2-core AMD EPYC (docs/peers.md), fp32",
                    notes=[f"CN-DPM: {experts} experts if every image goes to the short-term memory"])


# LIMix (AMD EPYC with AVX512-BF16, 1 thread beside another run, fp32, 2026-12-06/07; the nine LIMix
# records under results/, benchmarks/cost_model.py): a training step (a component's step and the Student's,
# which draws its other components' share of the minibatch from them) 7.5 ms + 0.3 ms per component (7.6 ms
# at 1.4 components on average, 12-13 ms at 16, 15 ms at 20); the knowledge check 40 ms per component and
# window (1,000 window and 1,000 generated images; 37-49 ms); the k-sample bound 6.3 us per image x sample x
# (components + 1) on the torch path, probes included (6.2-7.2 us at 2..30 components). Two threads were not
# measured: the same unit costs.
LIMIX_STEP_MS = 7.5
LIMIX_STEP_PER_COMPONENT_MS = 0.3
LIMIX_CHECK_S = 0.04  # per component and window, at knowledge_images = 1000
LIMIX_IW_US = 6.3
LIMIX_ASSUMED_COMPONENTS = 30  # OCM Table 1's N for LIMix: the count is only known at the end (2..30 measured)
LIMIX_MEAN_K_FRACTION = 0.75  # the mean count over the windows against the final one (0.47..0.88 measured)


def _limix_estimate(cfg: Any, learner: Any, arrivals: int, threads: int, test_images: int, eval_points: int,
                    components: int | None = None) -> Estimate:
    """LIMix: ``planned_steps`` (every window replays: an upper bound) at a per-step cost that grows with
    the components, a knowledge check per component and window, and every evaluation over all components.
    How many components a run grows follows its threshold and budget, so the estimate assumes
    ``components`` (default: Table 1's N = 30, at most one per window and ``max_components``)."""
    c, ev = cfg.learner, cfg.eval
    windows = arrivals * cfg.stream.batch_size // cfg.memory.window
    assumed = components is None
    k = components if components is not None else LIMIX_ASSUMED_COMPONENTS
    k = max(1, min(k, windows, c.max_components or k))
    mean_k = max(1.0, LIMIX_MEAN_K_FRACTION * k)
    final_images = ev.test_size or test_images
    curve_images = ev.curve_test_size or final_images
    points = max(0, eval_points - 1)
    phases = {
        "train_steps": (learner.planned_steps(arrivals) or 0)
        * (LIMIX_STEP_MS + LIMIX_STEP_PER_COMPONENT_MS * mean_k) * 1e-3,
        "memory_and_events": max(0, windows - 1) * mean_k * LIMIX_CHECK_S * c.knowledge_images / 1000,
        "evaluation_points": points * (curve_images * ev.curve_iw_samples * (mean_k + 1) * LIMIX_IW_US * 1e-6
                                       + _probe_seconds(cfg, threads, round(mean_k))),
        "checkpoints": (arrivals // cfg.checkpoint_every if cfg.checkpoint_every else 1) * CHECKPOINT_S,
        "stream_and_logs": arrivals * ARRIVAL_S,
        "final_evaluation": final_images * ev.iw_samples * (k + 1) * LIMIX_IW_US * 1e-6,
    }
    notes = [f"LIMix: {k} components assumed (Table 1's N)" if assumed else f"LIMix: {k} components"]
    return Estimate(phases, threads, machine="2-core AMD EPYC (docs/peers.md), fp32", notes=notes)


def estimate(cfg: Any, learner: Any, arrivals: int, threads: int, test_images: int = 10000,
             eval_points: int = 5, x_dim: int = 784, components: int | None = None) -> Estimate | None:
    """The wall time of a run of ``learner`` (built from ``cfg``) over ``arrivals`` arrivals, by phase.

    Args:
        cfg: the resolved RunConfig.
        learner: the built learner (``planned_steps``, ``precision``, ``model_kind``; Dynamic-OCM's expansion tests).
        arrivals: the stream's length.
        threads: torch threads the run uses (``torch.get_num_threads()`` after the run's setting).
        test_images: the whole test split (``eval.test_size`` 0 means all of it).
        eval_points: evaluation points including the final one (the stream's task ends).
        x_dim: pixels per image (a VAE-GAN update's cost depends on the image size).
        components: LIMix only: its final component count where known (a finished run's); otherwise
            ``LIMIX_ASSUMED_COMPONENTS``.

    Returns:
        An :class:`Estimate`, or None where there are no measured unit costs (CUDA, a plugin's model kind, an
        unknown step count).
    """
    if getattr(getattr(learner, "device", None), "type", "cpu") != "cpu":
        return None
    kind = type(learner).model_kind
    if kind not in CALIBRATED_KINDS:  # a plugin's model kind: no measured unit costs
        return None
    if kind == "limix":
        return _limix_estimate(cfg, learner, arrivals, threads, test_images, eval_points, components)
    if kind == "cndpm":
        return _cndpm_estimate(cfg, learner, arrivals, threads, test_images, eval_points)
    steps = learner.planned_steps(arrivals)
    if not steps:
        return None
    precision = getattr(learner, "precision", "fp32")
    notes = []
    if kind == "vaegan":
        per = VAEGAN_UPDATE_S.get(x_dim, 0.35 * x_dim / 784) * getattr(cfg.model, "width", 1.0) ** 2
        per *= 1.0 if threads >= 2 else 1.7  # one thread: about 1.7x the 2-thread update
        if precision == "bf16":
            per /= BF16_SPEEDUP
        notes.append("VAE-GAN: training steps only (its evaluation is not calibrated)")
    else:
        c = cfg.learner
        per = step_ms(getattr(c, "elbo_samples", 1), threads) * 1e-3 * getattr(c, "minibatch", 64) / 64
        if precision == "bf16" and getattr(c, "minibatch", 64) * getattr(c, "elbo_samples", 1) >= getattr(
                c, "bf16_min_rows", 256):
            per /= BF16_SPEEDUP
    k_final = 1
    memory_s = 0.0
    from .learners.ocm import DynamicOCM

    if isinstance(learner, DynamicOCM):  # Dynamic-OCM: R at every (expansion_every-th) selection event
        c, m = cfg.learner, cfg.memory
        tests = _events(cfg, arrivals) // max(1, c.expansion_every)
        k_final = c.max_components
        mean_k = max(1.0, MEAN_K_FRACTION.get(c.expansion_direction, 0.85) * c.max_components)
        held = m.stm_capacity + cfg.stream.batch_size + learner.memory_at(arrivals) / 2  # STM full + LTM
        memory_s = _iw_seconds(tests * held, c.expansion_samples, mean_k, threads)
        if c.expansion_direction != "both":
            k_final = max(1, round(MEAN_K_FRACTION["drop"] * c.max_components * 1.6))
    ev = cfg.eval
    final_images = ev.test_size or test_images
    curve_images = ev.curve_test_size or final_images
    points = max(0, eval_points - 1)
    mean_k_points = (1 + k_final) / 2
    phases = {
        "train_steps": steps * per,
        "memory_and_events": memory_s,
        "evaluation_points": points * (_iw_seconds(curve_images, ev.curve_iw_samples, mean_k_points, threads)
                                       + _probe_seconds(cfg, threads, round(mean_k_points))),
        "checkpoints": (arrivals // cfg.checkpoint_every if cfg.checkpoint_every else 1) * CHECKPOINT_S,
        "stream_and_logs": arrivals * ARRIVAL_S,
        "final_evaluation": (_iw_seconds(final_images, ev.iw_samples, k_final, threads)
                             + _probe_seconds(cfg, threads, k_final)) if kind != "vaegan" else 0.0,
    }
    return Estimate(phases, threads, notes=notes, step_s=per if kind != "vaegan" else None)


COMPUTE_PHASES = ("train_steps", "memory_and_events", "evaluation_points", "final_evaluation")
CALIBRATE_ABOVE_S = 120.0  # estimates of more training time than this are checked against a step timed here
_MEASURED: dict[tuple, float] = {}  # one timing per model, bound and threads in a process (a dry run's cells)


def measure_step_s(cfg: Any, learner: Any, threads: int | None = None, seconds: float = 0.3) -> float | None:
    """One training step of ``learner``'s trainable VAE (the newest component of a mixture), timed on this
    machine: a copy of it, a fresh Adam and a random binary minibatch from a private generator, in the
    learner's precision, two warm-up steps and then the median of steps over about ``seconds``.
    Nothing of the run is touched: not its model, its optimiser nor its seeded generator (a resumed run
    equals an uninterrupted one). None for a learner without such a step (VAE-GAN, CN-DPM, LIMix, CUDA)."""
    import copy
    import statistics
    import time

    import torch

    c = cfg.learner
    model = getattr(learner.model, "newest", learner.model)
    if (getattr(getattr(learner, "device", None), "type", "cpu") != "cpu" or type(learner).model_kind
            not in ("vae", "mixture") or not hasattr(model, "objective") or not hasattr(c, "elbo_samples")):
        return None
    key = (repr(cfg.model), c.minibatch, c.elbo_samples, c.objective, learner.precision,
           threads or torch.get_num_threads(), getattr(model, "x_dim", 0))
    if key in _MEASURED:
        return _MEASURED[key]
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        net = copy.deepcopy(model).train()
        for p in net.parameters():
            p.requires_grad_(True)
        adam = torch.optim.Adam(net.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(c.minibatch, net.x_dim, generator=gen).round()
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < 5 or (time.perf_counter() - start < seconds and len(times) < 200):
            t0 = time.perf_counter()
            with learner.autocast():
                loss = -net.objective(x, c.objective, c.elbo_samples, gen).mean()
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    _MEASURED[key] = statistics.median(times[2:])
    return _MEASURED[key]


def machine_busy(threads: int | None = None) -> str | None:
    """``"load 2.1 on 2 cores"`` when the 1-minute load average leaves fewer free cores than the
    ``threads`` to be timed (less half a core), else None. ``threads`` defaults to the cores this
    process may use. The load average counts the whole machine, so a run pinned to one core
    (``taskset``) beside another pinned to the other is timed when its own core is free. A step timed
    on busy cores measures the other work's load more than the machine: two threads timed beside a
    two-thread run took 5x to 40x their idle time (OpenMP threads waiting on each other)."""
    import os

    try:
        load = os.getloadavg()[0]
        cores = os.cpu_count() or 1
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    except OSError:
        return None
    need = min(threads or usable, usable)
    return f"load {load:.1f} on {cores} core{'s' if cores > 1 else ''}" if cores - load < need - 0.5 else None


def calibrate(est: Estimate | None, cfg: Any, learner: Any, threads: int | None = None) -> Estimate | None:
    """``est`` with its compute phases scaled by this machine's speed: a training step timed here
    (:func:`measure_step_s`) over the unit cost the estimate used (measured on another machine: this
    AMD EPYC's bf16 steps took 2x the Intel Xeon's units). Unchanged where there is nothing to time or
    the training steps are estimated at under ``CALIBRATE_ABOVE_S`` (smoke runs start at once); on a
    busy machine (:func:`machine_busy`) unchanged too, with ``untimed`` saying why."""
    if est is None or not est.step_s or est.phases["train_steps"] < CALIBRATE_ABOVE_S:
        return est
    busy = machine_busy(threads)
    if busy:
        est.untimed = f"not timed here: the machine is busy ({busy})"
        return est
    measured = measure_step_s(cfg, learner, threads)
    if not measured:
        return est
    factor = measured / est.step_s
    phases = {k: v * factor if k in COMPUTE_PHASES else v for k, v in est.phases.items()}
    return Estimate(phases, est.threads, est.machine, list(est.notes), est.step_s, measured)


def banner_lines(cfg: Any, learner: Any, arrivals: int, eval_points: int, x_dim: int) -> list[str]:
    """The start banner's lines on cost: steps and the estimate for the threads this run uses
    (``threads: 0`` follows the free cores: the estimate for all of them and for one)."""
    import torch

    steps = learner.planned_steps(arrivals)
    if not steps:
        return []
    threads = torch.get_num_threads()
    test_images = 10000 * len(cfg.stream.datasets)
    est = calibrate(estimate(cfg, learner, arrivals, threads, test_images, eval_points, x_dim), cfg, learner)
    if est is None:
        return [f"  about {steps:,} optimiser steps (no measured unit costs for {type(learner).model_kind} models "
                f"on {learner.device.type}: the progress bar's ETA is the figure)"]
    line = f"  about {steps:,} optimiser steps; wall time {est.describe()} with {threads} thread(s)"
    if cfg.threads == 0 and threads > 1:
        one = calibrate(estimate(cfg, learner, arrivals, 1, test_images, eval_points, x_dim), cfg, learner, 1)
        line += f", {duration(one.total_s) if one else '?'} with one (a busy machine)"
    if est.notes:
        line += f"; {'; '.join(est.notes)}"
    source = f"costs measured on a {est.machine.split(',')[0]}, streamvae.costs"
    if est.untimed:
        source += f"; {est.untimed}"
    if est.measured_step_s and est.step_s:
        source = (f"a training step timed here now: {est.measured_step_s * 1e3:.1f} ms, {est.measured_step_s / est.step_s:.2f}x "
                  f"the cost model's {est.step_s * 1e3:.1f} ms ({source}), which scales its times")
    return [line, f"  ({source}; the progress bar's ETA is the measured figure)"]


__all__ = ["Estimate", "estimate", "calibrate", "machine_busy", "measure_step_s", "banner_lines", "duration", "step_ms", "STEP_MS", "IW_US"]
