"""Sizes checked before a run is built: memory and evaluation work estimated from the config alone.

A config can ask for more than a machine has (``model.latent=1e8``, ``memory.capacity=1e9``,
``learner.elbo_samples=100000``) or for an evaluation that would run for days (``eval.iw_samples=1e9``).
Without a check such a run ends in an allocator traceback after minutes of work, or evaluates for
hours without a word. :func:`check` estimates, from the config and the datasets' image sizes only
(nothing is read or built):

* **memory**: model parameters with their gradients and Adam moments (4 copies, float32; a mixture
  counts ``learner.max_components`` of them), every memory's capacity in images, and the larger of
  one training step's activations (``learner.minibatch`` x ``learner.elbo_samples`` decoder rows) and
  one evaluation chunk (``eval.chunk_rows`` decoder rows);
* **evaluation work**: floating-point operations of the importance-weighted bound at the final
  point and at the curve points (encoder once per image, decoder once per sample).

and refuses, in one line naming the fields, a run whose memory estimate is above this machine's
memory (RAM, the cgroup limit, and the GPU's memory on CUDA) or whose evaluation is above
:data:`MAX_EVAL_FLOP`. ``--force`` (``check(cfg, force=True)``) skips both for those who mean it.
The estimates are rough (within a factor of about 2); they exist to catch orders of magnitude.

    sizes.check(cfg)                  # ConfigError when the run cannot fit
    est = sizes.estimate(cfg)         # {"memory_bytes": ..., "parts": {...}, "eval_flop": ...}
"""
from __future__ import annotations

import math
import os
from dataclasses import fields, is_dataclass
from typing import Any

from . import config as C
from .errors import ConfigError

FLOAT_BYTES = 4  # float32 everywhere the estimate counts
PARAM_COPIES = 4  # weights, gradients, Adam's two moments
# VAE-GAN (DEMC) parameters at model.width=1, by image size (measured; they scale with width squared)
VAEGAN_PARAMS = {784: 19.9e6, 3072: 10.7e6}
TEST_IMAGES = 10_000  # test images per dataset when eval.test_size=0 (MNIST-like sets; CIFAR and SVHN are near it)
# above this many floating-point operations an evaluation is refused without --force: about 250 times
# the paper's final evaluation (k=1000 on 10,000 images), a day or more on a CPU
MAX_EVAL_FLOP = 1e15


def _x_dim(cfg: C.RunConfig) -> int:
    from .data.datasets import DATASETS

    return max(math.prod(DATASETS[d].image_shape) for d in cfg.stream.datasets if d in DATASETS)


def memory_capacities(section: Any) -> dict[str, int]:
    """``{"memory.capacity": n, ...}``: the memory fields that hold images (named ``*capacity``)."""
    if not is_dataclass(section):
        return {}
    out = {}
    for f in fields(section):
        v = getattr(section, f.name)
        if f.name.endswith("capacity") and isinstance(v, int) and not isinstance(v, bool):
            out[f"memory.{f.name}"] = v
    return out


def _mlp_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def estimate(cfg: C.RunConfig) -> dict[str, Any]:
    """Rough memory (bytes, by part) and evaluation work (floating-point operations) of a run."""
    x_dim = _x_dim(cfg)
    m, lc, e = cfg.model, cfg.learner, cfg.eval
    components = int(getattr(lc, "max_components", 1) or 1)
    minibatch = int(getattr(lc, "minibatch", cfg.stream.batch_size))
    samples = int(getattr(lc, "elbo_samples", 1))
    if isinstance(m, C.ModelConfig):
        enc = _mlp_params([x_dim, *m.encoder_hidden, 2 * m.latent])
        dec = _mlp_params([m.latent, *m.decoder_hidden, x_dim])
        params = (enc + dec) * components
        # floats alive per decoder row (z, hidden layers, logits, log-probabilities) and per encoder row
        row = 3 * m.latent + 2 * sum(m.decoder_hidden) + 3 * x_dim
        enc_row = x_dim + 2 * sum(m.encoder_hidden) + 4 * m.latent
    else:  # the VAE-GAN
        base = VAEGAN_PARAMS.get(x_dim, VAEGAN_PARAMS[784] * x_dim / 784)
        params = int(base * getattr(m, "width", 1.0) ** 2) * components
        enc = dec = params // 2
        row = enc_row = 3 * m.latent + 3 * x_dim
    parts = {
        "model": params * PARAM_COPIES * FLOAT_BYTES,
        "memories": sum(memory_capacities(cfg.memory).values()) * x_dim * FLOAT_BYTES,
        "training step": 2 * (minibatch * samples * row + minibatch * enc_row) * FLOAT_BYTES,  # x2: backward
        "evaluation chunk": (e.chunk_rows * row + min(e.chunk_rows, TEST_IMAGES) * enc_row) * FLOAT_BYTES,
    }
    memory = parts["model"] + parts["memories"] + max(parts["training step"], parts["evaluation chunk"])
    images = e.test_size or TEST_IMAGES * len(cfg.stream.datasets)
    curve = (e.curve_test_size or e.test_size) or images
    points = max(1, e.points) if e.every == 0 else max(1, 1000 // max(1, e.every))
    # every component scores every image (a mixture's selected and mixture bounds)
    per_image = 2 * enc * (components if isinstance(m, C.ModelConfig) else 1)
    per_sample = 2 * dec * (components if isinstance(m, C.ModelConfig) else 1)
    flop = (images * (per_image + e.iw_samples * per_sample)
            + points * curve * (per_image + e.curve_iw_samples * per_sample))
    return {"memory_bytes": int(memory), "parts": parts, "eval_flop": float(flop), "params": int(params),
            "test_images": images}


def machine_memory(device: str = "auto") -> int:
    """Bytes of memory this process may use: physical RAM, a cgroup limit when lower, and on CUDA
    the GPU's memory when lower."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 1 << 62
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    from .devices import resolve_device

    try:
        dev = resolve_device(device)
    except ConfigError:
        dev = None
    if dev is not None and dev.type == "cuda":
        import torch

        try:
            total = min(total, torch.cuda.get_device_properties(dev).total_memory)
        except (RuntimeError, AssertionError, ValueError):  # CUDA not initialisable here: the run start says so
            pass
    return int(total)


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:,.0f} MiB"


# which config fields drive each part (named in the refusal)
_DRIVERS = {
    "model": ("model.latent", "model.encoder_hidden", "model.decoder_hidden", "model.width", "learner.max_components"),
    "memories": (),  # filled from the memory section's *capacity fields
    "training step": ("learner.minibatch", "learner.elbo_samples", "model.latent"),
    "evaluation chunk": ("eval.chunk_rows", "model.latent"),
}


def _fields_of(cfg: C.RunConfig, part: str) -> str:
    flat = C.flatten(C.to_dict(cfg))
    keys = list(memory_capacities(cfg.memory)) if part == "memories" else [k for k in _DRIVERS[part] if k in flat]
    return ", ".join(f"{k}={flat[k] if not isinstance(flat[k], list) else flat[k]}" for k in keys)


def check(cfg: C.RunConfig, force: bool = False, limit_bytes: int | None = None) -> dict[str, Any]:
    """Refuse (one ConfigError line) a run whose estimated memory is above ``limit_bytes`` (default:
    :func:`machine_memory`) or whose evaluation is above :data:`MAX_EVAL_FLOP`; ``force`` skips the
    refusal. Returns the estimate."""
    est = estimate(cfg)
    if force:
        return est
    limit = machine_memory(cfg.device) if limit_bytes is None else limit_bytes
    if est["memory_bytes"] > limit:
        part, size = max(est["parts"].items(), key=lambda kv: kv[1])
        raise ConfigError(f"this run needs about {_gib(est['memory_bytes'])} of memory, more than the "
                          f"{_gib(limit)} here ({part}: about {_gib(size)}, from {_fields_of(cfg, part)}); "
                          "lower them, or pass --force to try anyway")
    if est["eval_flop"] > MAX_EVAL_FLOP:
        e = cfg.eval
        raise ConfigError(f"evaluation would take about {est['eval_flop']:.1e} floating-point operations "
                          f"(eval.iw_samples={e.iw_samples}, eval.curve_iw_samples={e.curve_iw_samples} on "
                          f"{est['test_images']} test images), more than the limit of {MAX_EVAL_FLOP:.0e} (about "
                          "250 times the paper's final evaluation, a day or more on a CPU); lower eval.iw_samples "
                          "or eval.test_size, or pass --force to run it anyway")
    return est


__all__ = ["estimate", "check", "machine_memory", "memory_capacities", "MAX_EVAL_FLOP"]
