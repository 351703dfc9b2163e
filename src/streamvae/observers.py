"""What watches a run without steering it: the progress bar, TensorBoard and the thread follower.

Each is an observer with three hooks, called by the loop: ``after_arrival`` (the learner's logs of
one arrival), ``after_evaluation`` (an evaluation row, the final one included) and ``at_end`` (the
results about to be written, which it may add to; ``None`` when the run stops early). Each keeps
its own state; none changes what the learner or the evaluator computes.

    watch = Observers.for_run(cfg, stream, run_dir, start, resume)
    watch.after_arrival(learner, arrival, logs)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from . import threads
from .config import RunConfig
from .evaluation.metrics import headline


def eval_line(row: dict) -> str:
    """``evaluation at arrival 94: ll_iw100 -251.20 recon_sse 25.10 memory 624, components 1``."""
    parts = [f"evaluation at arrival {row['arrival']}:"] + [f"{k} {v:.2f}" for k, v in headline(row)]
    parts.append(f"memory {row.get('memory', 0)}, components {row.get('components', 1)}")
    return " ".join(parts)


class ProgressBar:
    """tqdm over the arrivals, a line per evaluation point, and the final evaluation's announcement."""

    def __init__(self, cfg: RunConfig, start: int, n: int, points: set[int]):
        from tqdm import tqdm

        self.cfg, self.n, self.points = cfg, n, points
        self.bar = tqdm(total=n, initial=start, desc=cfg.learner.name, unit="batch", file=sys.stderr,
                        dynamic_ncols=True)
        self.t_final = 0.0

    def after_arrival(self, learner, arrival: int, logs: dict) -> None:
        self.bar.update(1)
        self.bar.set_postfix({k: f"{v:.1f}" if isinstance(v, float) else v for k, v in logs.items()})
        if arrival in self.points and arrival < self.n:
            self.bar.set_description(f"{self.cfg.learner.name}: evaluating")
        if arrival == self.n:
            self.bar.close()
            print(f"final evaluation: k={self.cfg.eval.iw_samples}, {len(learner.components())} component(s)...",
                  file=sys.stderr, flush=True)
            self.t_final = time.perf_counter()

    def after_evaluation(self, learner, row: dict) -> None:
        if row.get("final"):
            print(f"{eval_line(row)} ({time.perf_counter() - self.t_final:.0f} s)", file=sys.stderr, flush=True)
            return
        self.bar.set_description(self.cfg.learner.name)
        self.bar.write(eval_line(row), file=sys.stderr)

    def at_end(self, results: dict | None) -> None:
        self.bar.close()


class TensorBoard:
    """Scalars and grids to ``RUN_DIR/tensorboard`` (``streamvae.live``); on resume, later events are purged."""

    def __init__(self, cfg: RunConfig, stream, run_dir: Path, purge_step: int | None):
        from .live import TensorBoardLog

        self.shape = stream.shape
        self.log = TensorBoardLog(run_dir / "tensorboard", cfg.eval.grid, cfg.seed, stream.task_names, purge_step)

    def after_arrival(self, learner, arrival: int, logs: dict) -> None:
        self.log.arrival(arrival, logs)

    def after_evaluation(self, learner, row: dict) -> None:
        self.log.evaluation(row, learner.components(), self.shape, learner.memory_images())

    def at_end(self, results: dict | None) -> None:
        self.log.close()


class ThreadFollower:
    """``threads: 0`` on the CPU: torch's threads follow the cores other processes leave free
    (``streamvae.threads``), checked after every arrival and between evaluation chunks."""

    def __init__(self):
        self.threads_at_start = torch.get_num_threads()
        self.governor = threads.ThreadGovernor(self.threads_at_start)

    def after_arrival(self, learner, arrival: int, logs: dict) -> None:
        self.governor.poll()

    def after_evaluation(self, learner, row: dict) -> None:
        pass

    def at_end(self, results: dict | None) -> None:
        if results is not None:  # how the thread count followed the load (this stretch of the run)
            g = self.governor
            results["wall_threads"] = {"max": g.max_threads, "changes": len(g.changes), "final": g.threads}
        torch.set_num_threads(self.threads_at_start)


class Observers:
    """The run's observers, called in order; ``between_chunks`` is what evaluation calls between chunks."""

    def __init__(self, observers: list):
        self.observers = observers
        self.ended = False
        follower = next((o for o in observers if isinstance(o, ThreadFollower)), None)
        self.between_chunks = follower.governor.poll if follower is not None else None

    @classmethod
    def for_run(cls, cfg: RunConfig, learner, stream, run_dir: Path, start: int, resume: bool,
                points: set[int]) -> "Observers":
        found: list = []
        if cfg.progress:
            found.append(ProgressBar(cfg, start, len(stream), points))
        if cfg.tensorboard:
            found.append(TensorBoard(cfg, stream, run_dir, start if resume else None))
        if cfg.threads == 0 and learner.device.type == "cpu":
            found.append(ThreadFollower())
        return cls(found)

    def after_arrival(self, learner, arrival: int, logs: dict) -> None:
        for o in self.observers:
            o.after_arrival(learner, arrival, logs)

    def after_evaluation(self, learner, row: dict) -> None:
        for o in self.observers:
            o.after_evaluation(learner, row)

    def at_end(self, results: dict | None) -> None:
        if not self.ended:  # once: after the results, or when the run stops early
            self.ended = True
            for o in self.observers:
                o.at_end(results)
