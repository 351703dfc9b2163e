"""CN-DPM's evaluation cost: the k-sample IW bound of one expert, torch reference against the native
fused decoder + Bernoulli pass, measured in one process on the same draws: their ratio and their
largest difference. (A sleep's cost per 1,000 steps is in each run's events.jsonl: s_per_1000_steps.)

    python benchmarks/bench_cndpm.py [--threads 1] [--experts 20] [--images 64] [--k 1000]
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from streamvae import native
from streamvae.config import CNDPMModelConfig
from streamvae.models.bounds import iw_log_likelihood
from streamvae.models.cndpm import CNDPMExperts


def _bound(mix: CNDPMExperts, x: torch.Tensor, k: int, repeats: int = 3) -> tuple[float, torch.Tensor]:
    e = mix.real()[-1]  # the last expert: the longest chain of precursor columns
    best, ll = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        ll = iw_log_likelihood(e, x, k, torch.Generator().manual_seed(1))
        best = min(best, time.perf_counter() - t)
    assert ll is not None
    return best, ll


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--experts", type=int, default=20)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--k", type=int, default=1000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} thread(s); "
          f"native: {native.status(True)}")
    x = (torch.rand(a.images, 784, generator=torch.Generator().manual_seed(0)) > 0.6).float()
    mixes = {}
    for name, nat in (("torch", False), ("native", True)):
        mixes[name] = CNDPMExperts(CNDPMModelConfig(), 784, seed=0, native=nat)
        mixes[name].grow_to(a.experts)
    mixes["native"].load_state_dict(mixes["torch"].state_dict())
    times = {}
    for name, mix in mixes.items():
        times[name], ll = _bound(mix, x, a.k)
        mixes[name] = ll  # type: ignore[assignment]
        print(f"  {name:6s}: {times[name]:.3f} s for {a.images} images x k = {a.k} (expert {a.experts}), "
              f"{1e6 * times[name] / (a.images * a.k):.2f} us per image x sample")
    diff = float((mixes["torch"] - mixes["native"]).abs().max())  # type: ignore[operator]
    print(f"  native / torch speed: {times['torch'] / times['native']:.2f}x; largest difference {diff:.2e} nats")


if __name__ == "__main__":
    main()
