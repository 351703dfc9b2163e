"""Time of one VAE-GAN update (DEMC and its baselines, ``VAEGANLearner.update``) against a frozen reference.

    python benchmarks/bench_vaegan.py --threads 1 --clock cpu           # 28x28, full width, batch 64
    python benchmarks/bench_vaegan.py --threads 1 --clock cpu --quick   # fewer rounds
    python benchmarks/bench_vaegan.py --size 32 --width 0.25 --quick    # 32x32 networks (full width: minutes)

Everything runs in one process, on the same batch: the reference (``reference_update`` below: the
update as it was before issue 10, kept here frozen) and the learner's own update in each
configuration (fp32 / bf16 x NCHW / channels_last memory format). Each configuration has its own
learner started from the same weights; the configurations are timed in interleaved rounds, each
round between two measurements of the matmul peak (fp32 and bf16, 2048^3), because this CPU's clock
moves by +-10% within seconds and the machine is shared.

FLOPs are counted from the shapes by ``torch.utils.flop_counter.FlopCounterMode`` while one update
runs: every matmul (mm/addmm/bmm: 2*m*k*n) and convolution (2 * output elements * C_in/groups * kh*kw,
transposed convolutions likewise) that the update dispatches, forward and backward, including the
gradient penalty's input gradient (create_graph) and its double backward. Elementwise work, BatchNorm,
the optimiser steps and the random draws are not counted.

The last line is ``vaegan_update_speedup=X``: the median over rounds of (reference time / time of
the fastest configuration the learner runs (rows marked *: fp32 or bf16 via the run setting
``precision``, on the model's own memory format: NCHW at 28x28, channels_last at 32x32; the other
rows convert the memory format by hand, to show what it buys) for the chosen size (the target
figure: 28x28, width 1, batch 64). The reference always runs NCHW, as before issue 10.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from streamvae import precision
from streamvae.learners import LEARNERS
from streamvae.models import build_model
from streamvae.models.vaegan import frozen_bn_statistics
from streamvae.registry import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {28: REPO / "configs/split_fashion/demc.yaml", 32: REPO / "configs/split_svhn/demc.yaml"}
SHAPES = {28: (1, 28, 28), 32: (3, 32, 32)}


# -- the reference: the update before issue 10 (commit bc46ac0), frozen ----------------------------
# The networks are unchanged (models/vaegan.py); the loss, the penalty and the three steps are copied
# here as they were. Every tensor is fp32; G(z) runs twice (steps 1a and 1b).
def reference_vae_loss(model, x, kl_weight, generator):
    q = model.encode(x)
    eps = torch.randn(q.loc.shape, generator=generator, device=q.loc.device)
    x_hat = model.decode(q.loc + q.scale * eps)
    sse = (x_hat - x.flatten(1)).pow(2).sum(-1)
    var = q.scale.pow(2)
    kl = 0.5 * (q.loc.pow(2) + var - torch.log(var + 1e-8) - 1).sum(-1)
    return sse + kl_weight * kl


def reference_gradient_penalty(critic, real, fake, generator=None, shape=None, legacy=False):
    n = real.shape[0]
    eps = torch.rand((1, 1) if legacy else (n, 1), generator=generator, dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)  # (B, D)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    if legacy:
        norm = grad.reshape((n,) + tuple(shape)).pow(2).sum(2).add(1e-12).sqrt()  # (B, C, W)
    else:
        norm = grad.pow(2).sum(1).add(1e-12).sqrt()  # (B,)
    return (norm - 1).pow(2).mean()


def reference_update(learner, x: torch.Tensor) -> dict[str, float]:
    """``VAEGANLearner.update`` as it was: one batch, on the learner's model, optimisers and generator."""
    c, model, g = learner.cfg.learner, learner.model, learner.generator
    z = model.prior_sample(len(x), g)
    # step 1a: the critic
    fake = model.decode(z).detach()
    gp = reference_gradient_penalty(model.critic, x, fake, g, model.shape, legacy=c.gp_legacy)
    loss_d = model.critic(fake).mean() - model.critic(x).mean() + c.gp_weight * gp
    learner.critic_optimizer.zero_grad(set_to_none=True)
    loss_d.backward(inputs=learner.critic_params)
    learner.critic_optimizer.step()
    logs = {"loss_d": loss_d.item()}
    if c.inference_step and c.step_order == "simultaneous":
        loss_vae = reference_vae_loss(model, x, c.kl_weight, g).mean()
        loss_g = -model.critic(model.decode(z)).mean() + c.vae_weight * loss_vae
        g_grads = torch.autograd.grad(loss_g, learner.gen_enc_params, retain_graph=True)
        e_grads = torch.autograd.grad(loss_vae, learner.encoder_params)
        for opt, params, grads in ((learner.optimizer, learner.gen_enc_params, g_grads),
                                   (learner.inference_optimizer, learner.encoder_params, e_grads)):
            for p, gr in zip(params, grads):
                p.grad = gr
            opt.step()
            opt.zero_grad(set_to_none=True)
        logs.update(loss_g=loss_g.item(), loss_vae=loss_vae.item())
    else:
        # step 1b: G and E together
        loss_vae = reference_vae_loss(model, x, c.kl_weight, g).mean()
        loss_g = -model.critic(model.decode(z)).mean() + c.vae_weight * loss_vae
        learner.optimizer.zero_grad(set_to_none=True)
        loss_g.backward(inputs=learner.gen_enc_params)
        learner.optimizer.step()
        logs.update(loss_g=loss_g.item(), loss_vae=loss_vae.item())
        if c.inference_step:  # step 2: E alone
            with frozen_bn_statistics(model.generator):
                loss_inf = reference_vae_loss(model, x, c.kl_weight, g).mean()
            learner.inference_optimizer.zero_grad(set_to_none=True)
            loss_inf.backward(inputs=learner.encoder_params)
            learner.inference_optimizer.step()
            logs["loss_inf"] = loss_inf.item()
    learner.steps += 1
    return logs


# -- set-up ------------------------------------------------------------------------------------------
def make_learner(size: int, width: float, overrides: list[str] = ()):
    """A learner on the released config of ``size`` (DEMC), weights from seed 0, draws from seed 1."""
    cfg = load_config(CONFIGS[size], ["progress=False", f"model.width={width}", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, 0, shape=SHAPES[size])
    return LEARNERS[cfg.learner.name](cfg, model, torch.Generator().manual_seed(1))


def clone_learner(learner, prec: str = "fp32", channels_last: bool | None = None):
    """A fresh learner with a copy of ``learner``'s weights (and fresh optimisers, as at a start);
    ``channels_last`` True/False converts the model's memory format, None keeps the model's own."""
    model = copy.deepcopy(learner.model)
    if channels_last is not None:
        model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    new = type(learner)(learner.cfg, model, torch.Generator().manual_seed(1))
    new.precision = prec
    return new


# -- timing --------------------------------------------------------------------------------------------
CLOCK = time.perf_counter  # --clock cpu: time.thread_time (with --threads 1: excludes time-slicing)


def timed(fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = CLOCK()
        fn()
        out.append(CLOCK() - t)
    return out


def matmul_peak(dtype: torch.dtype, repeats: int) -> float:
    """GFLOP/s of a 2048 x 2048 @ 2048 x 2048 product in ``dtype`` (best of ``repeats``)."""
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    c = torch.empty(2048, 2048, dtype=dtype)
    return 2 * 2048 ** 3 / min(timed(lambda: torch.mm(a, b, out=c), repeats, warmup=2)) / 1e9


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> None:
    global CLOCK
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    ap.add_argument("--size", type=int, choices=(28, 32), default=28, help="image size (network family)")
    ap.add_argument("--width", type=float, default=1.0, help="model.width (1.0: the released networks)")
    ap.add_argument("--batch", type=int, default=64, help="images per update (released: 64)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: CPU time of the calling thread (needs --threads 1; robust to other processes)")
    ap.add_argument("--rounds", type=int, default=0, help="override the number of rounds")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every learner, e.g. learner.gp_legacy=false")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if torch.get_num_threads() != 1:
            ap.error("--clock cpu needs --threads 1 (other threads' time would not be counted)")
        CLOCK = time.thread_time
    rounds = args.rounds or (3 if args.quick else 7)
    reps = 2 if args.quick else 4
    reps_peak = 3 if args.quick else 5

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}  host {platform.node()}  "
          f"command: python benchmarks/bench_vaegan.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"machine: {precision.machine()}")
    print(f"cpu {precision.cpu_name()}  nproc {os.cpu_count()}  threads {torch.get_num_threads()}  clock {args.clock}  "
          f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    base = make_learner(args.size, args.width, args.set)
    c = base.cfg.learner
    print(f"network: {args.size}x{args.size}, width {args.width}, latent {base.cfg.model.latent}, batch {args.batch}; "
          f"gp_legacy {c.gp_legacy}, step_order {c.step_order}, inference_step {c.inference_step}, "
          f"rmsprop_init {c.rmsprop_init}")
    x = torch.rand(args.batch, base.model.x_dim, generator=torch.Generator().manual_seed(2))
    bf16_ok = precision.bf16_native(torch.device("cpu"))
    # the reference on today's memory format (NCHW); the learner's own: channels_last at 32x32 (VAEGAN)
    own_cl = args.size == 32  # VAEGAN keeps its 32x32 networks channels_last
    configs = {"reference (fp32)": (clone_learner(base, "fp32", False), reference_update)}
    for prec in ("fp32", "bf16") if bf16_ok else ("fp32",):
        for cl in (False, True):
            name = f"new {prec}" + (" channels_last" if cl else " NCHW") + (" *" if cl == own_cl else "")
            learner = clone_learner(base, prec, cl)
            configs[name] = (learner, type(learner).update)
    if not bf16_ok:
        print("bf16: no native bf16 matrix instructions here; bf16 configurations skipped")

    # FLOPs of one update, counted from the shapes (fp32 learners: the same ops run in bf16)
    flops_ref = count_flops(lambda: reference_update(clone_learner(base, "fp32", False), x))
    flops_new = count_flops(lambda: clone_learner(base).update(x))
    print(f"FLOPs per update (FlopCounterMode: matmuls + convolutions, forward, backward, penalty double backward): "
          f"reference {flops_ref / 1e9:.2f} GFLOP, new {flops_new / 1e9:.2f} GFLOP "
          f"(saved {1 - flops_new / flops_ref:.1%}: G(z) once per update instead of twice)")

    for learner, fn in configs.values():  # warm-up (first-call allocations, oneDNN primitive caches)
        timed(lambda: fn(learner, x), 1, warmup=1)
    times = {k: [] for k in configs}
    peaks = {"fp32": [], "bf16": []}
    for r in range(rounds):
        p32, p16 = matmul_peak(torch.float32, reps_peak), matmul_peak(torch.bfloat16, reps_peak) if bf16_ok else 0.0
        for name, (learner, fn) in configs.items():
            times[name].append(min(timed(lambda: fn(learner, x), reps, warmup=0)))
        peaks["fp32"].append(max(p32, matmul_peak(torch.float32, reps_peak)))
        peaks["bf16"].append(max(p16, matmul_peak(torch.bfloat16, reps_peak)) if bf16_ok else 0.0)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    p32, p16 = statistics.median(peaks["fp32"]), statistics.median(peaks["bf16"])
    print(f"matmul peak 2048^3 (median of rounds): fp32 {p32:.1f} GFLOP/s, bf16 {p16:.1f} GFLOP/s\n")

    ref = times["reference (fp32)"]
    print(f"{'configuration':<28} {'ms/update':>10} {'median':>8} {'speedup':>8} {'GFLOP/s':>8} "
          f"{'of fp32 peak':>13} {'of bf16 peak':>13}")
    med = {}
    for name, ts in times.items():
        flops = flops_ref if name.startswith("reference") else flops_new
        best = min(ts)
        med[name] = statistics.median(ts)
        speed = statistics.median([a / b for a, b in zip(ref, ts)])
        gf = flops / statistics.median(ts) / 1e9
        f16 = f"{gf / p16:>13.1%}" if bf16_ok else f"{'-':>13}"
        print(f"{name:<28} {best * 1e3:>10.1f} {med[name] * 1e3:>8.1f} {speed:>7.2f}x {gf:>8.1f} {gf / p32:>13.1%} {f16}")
    # the configurations the learner runs (*: the model's own memory format; precision is the run setting)
    best_name = min((k for k in times if k.endswith("*")), key=lambda k: med[k])
    speedup = statistics.median([a / b for a, b in zip(ref, times[best_name])])
    print(f"\nbest configuration: {best_name}; speedup = median over {rounds} rounds of reference / best "
          f"(ms columns: best and median over rounds of the best of {reps} updates)")
    print(f"vaegan_update_speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
