"""OCM's two memory-side computations, batched (ours) against one sample at a time (as released).

* a selection event: encoder-mean features of every STM and LTM image (concatenated over K
  components) and the mean kernel similarity of each STM sample to the whole LTM;
* an expansion check: R = mean over the memory of the mean over components of the k-sample bound.

The released scripts run both one image at a time (one session call per image, a Python loop over
pairs for the kernel). The reference here does the same with the same PyTorch model, so the ratio
measures batching, not frameworks. Run: ``python benchmarks/bench_ocm.py [--quick]``.
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from streamvae import native, precision
from streamvae.config import ModelConfig
from streamvae.models.bounds import iw_log_likelihood
from streamvae.memory import similarity_scores
from streamvae.models import MixtureVAE


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def mixture(k: int) -> MixtureVAE:
    torch.manual_seed(0)
    mix = MixtureVAE(ModelConfig(), 784, native=native.library() is not None)  # as a run with kernels=auto
    mix.grow_to(k)
    return mix.eval()


# -- selection event ---------------------------------------------------------------------------

def selection_ours(mix, stm, ltm):
    with torch.no_grad():
        return similarity_scores(mix.features(stm), mix.features(ltm), sigma=10.0)


def selection_reference(mix, stm, ltm):
    """One encoder call per image, then a Python double loop over (STM, LTM) pairs."""
    with torch.no_grad():
        fs = [mix.features(x[None])[0] for x in stm]
        fl = [mix.features(x[None])[0] for x in ltm]
        scores = []
        for a in fs:
            total = 0.0
            for b in fl:
                total += math.exp(-float(torch.linalg.vector_norm(a - b)) / (math.sqrt(2) * 10.0))
            scores.append(total / len(fl))
        return scores


# -- expansion check ---------------------------------------------------------------------------

def expansion_ours(mix, memory, k):
    return float(torch.stack([iw_log_likelihood(c, memory, k) for c in mix.components]).mean())


def expansion_reference(mix, memory, k):
    """One image and one component at a time, k samples each (the released evaluation)."""
    with torch.no_grad():
        total = 0.0
        for x in memory:
            per = []
            for c in mix.components:
                lw = c.log_weights(x[None], k)
                per.append(float(torch.logsumexp(lw, 0) - math.log(k)))
            total += sum(per) / len(per)
        return total / len(memory)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    print(f"machine: {precision.machine()}")

    print("\n== selection event: STM 576 images against an LTM of N images, K components ==")
    print(f"{'K':>3} {'LTM':>5} {'ours (ms)':>10} {'reference (ms)':>15} {'ratio':>8}")
    stm = torch.bernoulli(torch.rand(576, 784, generator=g), generator=g)
    ref_stm = 24 if a.quick else 48  # the reference is timed on a slice of the STM and scaled
    for k in (1, 5, 10):
        mix = mixture(k)
        for n in (64, 512, 1500, 2560):
            ltm = torch.bernoulli(torch.rand(n, 784, generator=g), generator=g)
            ours = best_of(lambda: selection_ours(mix, stm, ltm), 3)
            if k == 10 and n == 2560 or (k in (1, 10) and n in (64, 1500)):
                ref = best_of(lambda: selection_reference(mix, stm[:ref_stm], ltm), 1)
                # the pair loop is linear in the STM size; the LTM feature pass is paid once
                ref_full = ref * 576 / ref_stm
                print(f"{k:>3} {n:>5} {ours * 1e3:>10.1f} {ref_full * 1e3:>15.0f} {ref_full / ours:>8.0f}x")
            else:
                print(f"{k:>3} {n:>5} {ours * 1e3:>10.1f} {'':>15} {'':>8}")

    print("\n== expansion check: R over a memory of M images, K components, k importance samples ==")
    print(f"{'K':>3} {'M':>5} {'k':>5} {'ours (s)':>9} {'reference (s)':>14} {'ratio':>8}")
    ks = (100, 1000)
    for kc in (1, 5, 10):
        mix = mixture(kc)
        for m in ((576, 1500) if a.quick else (576, 1500, 3136)):
            memory = torch.rand(m, 784, generator=g)
            for k in ks:
                if a.quick and k == 1000 and kc == 10 and m > 576:
                    continue
                ours = best_of(lambda: expansion_ours(mix, memory, k), 1)
                line = f"{kc:>3} {m:>5} {k:>5} {ours:>9.2f}"
                if m == 576 and kc in (1, 5):
                    sub = 32
                    ref = best_of(lambda: expansion_reference(mix, memory[:sub], k), 1) * m / sub
                    line += f" {ref:>14.1f} {ref / ours:>7.1f}x"
                print(line)
    print("\nreference times are measured on a slice and scaled linearly to the full size (both loops are linear).")


if __name__ == "__main__":
    main()
