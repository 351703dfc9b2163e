"""Evaluate a learner's model(s) on a test set, per task and overall: one dict = one JSON line.

For a mixture (several components) two likelihoods are reported (evaluation spec section 3):
  * ``ll_iw{k}_selected``: the paper's protocol; per test image the component with the best k-sample
    bound is chosen, then re-evaluated with fresh samples (optimistic: an oracle on x itself);
  * ``ll_iw{k}_mixture``: a proper mixture likelihood log sum_j pi_j p_j(x), each p_j(x) estimated by
    its k-sample importance-weighted estimate; pi_j = 1/K unless the learner gives weights
    (``Learner.mixture_weights``: CN-DPM's prior counts), recorded in ``mixture_weights``.
``elbo_samples`` > 0 adds CN-DPM's own estimator ``elbo{n}_mixture`` (log sum_j pi_j exp ELBO_j(x),
each ELBO with n z draws, as the component's ``elbo`` computes it) and the same in bits per dimension.
``ll_iw{k}`` is the selected value for mixtures (what the published tables report).
Models without ``log_weights`` (DEMC's VAE-GAN) get ``recon_sse`` only. ``evaluate_generation``
adds FID / IS of generated images and of reconstructions with a named feature network (``eval.fid``).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..config import EvalConfig
from ..data.streams import TestSet
from ..models.bounds import iw_log_likelihood
from .reconstruction import recon_sse


def per_task_means(values: torch.Tensor, task: torch.Tensor, num_tasks: int) -> list[float | None]:
    out: list[float | None] = []
    for t in range(num_tasks):
        m = task == t
        out.append(float(values[m].mean()) if m.any() else None)
    return out


@torch.no_grad()
def score_components(components: list, x: torch.Tensor, k: int, generator: torch.Generator,
                     chunk_rows: int = 32768, between_chunks=None,
                     weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-image scores: ``ll`` (selected or single), ``mixture``, ``choice`` and ``sse``.

    Models without a likelihood (``has_likelihood`` False: the VAE-GAN) get ``sse`` only.
    ``between_chunks``: called between chunks of the likelihood (the run's thread follower).
    """
    if not all(c.has_likelihood for c in components):
        if len(components) != 1:
            raise ValueError("only a single model without log_weights can be scored")
        return {"sse": recon_sse(components[0], x)}
    lls = torch.stack([iw_log_likelihood(c, x, k, generator, chunk_rows, between_chunks)
                       for c in components])  # (K, N)
    if len(components) == 1:
        return {"ll": lls[0], "mixture": lls[0], "choice": torch.zeros(len(x), dtype=torch.long, device=x.device),
                "sse": recon_sse(components[0], x)}
    choice = lls.argmax(0)
    selected = torch.empty(len(x), dtype=torch.float64, device=x.device)
    sse = torch.empty(len(x), dtype=torch.float64, device=x.device)
    for j, comp in enumerate(components):
        m = choice == j
        if m.any():  # fresh samples for the chosen component, as released
            selected[m] = iw_log_likelihood(comp, x[m], k, generator, chunk_rows, between_chunks)
            sse[m] = recon_sse(comp, x[m])
    mixture = torch.logsumexp(lls + _log_weights(weights, len(components), lls), 0)
    return {"ll": selected, "mixture": mixture, "choice": choice, "sse": sse}


def _log_weights(weights: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor:
    """log pi_j as a ``(K, 1)`` column (uniform when ``weights`` is None; normalised otherwise)."""
    if weights is None:
        return torch.full((n, 1), -math.log(n), dtype=like.dtype, device=like.device)
    w = weights.to(like.device, like.dtype)
    return (w / w.sum()).log().unsqueeze(1)


@torch.no_grad()
def elbo_mixture(components: list, x: torch.Tensor, samples: int, generator: torch.Generator,
                 weights: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
    """CN-DPM's estimator (released ``Ndpm.forward`` at evaluation): log sum_j pi_j exp(ELBO_j(x)),
    each component's ``elbo`` with ``samples`` z draws; ``(N,)`` nats."""
    elbos = torch.stack([torch.cat([c.elbo(x[i:i + batch], samples, generator).double()
                                    for i in range(0, len(x), batch)]) for c in components])  # (K, N)
    return torch.logsumexp(elbos + _log_weights(weights, len(components), elbos), 0)


@torch.no_grad()
def evaluate(components, test: TestSet, num_tasks: int, tasks_seen: int, k: int,
             generator: torch.Generator, chunk_rows: int = 32768, between_chunks=None,
             weights: torch.Tensor | None = None, elbo_samples: int = 0) -> dict:
    """``ll_iw{k}`` and ``recon_sse`` per task, over the tasks seen so far, and over all tasks.

    ``ll_iw{k}`` averages over every test image of the tasks seen so far, which at the end of the
    stream is the whole test set (the papers' protocol).
    """
    components = list(components) if isinstance(components, (list, tuple)) else [components]
    modes = [c.training for c in components]
    for c in components:
        c.eval()
    s = score_components(components, test.x, k, generator, chunk_rows, between_chunks, weights)
    if elbo_samples and "ll" in s:
        s["elbo_mixture"] = elbo_mixture(components, test.x, elbo_samples, generator, weights)
    for c, mode in zip(components, modes):
        c.train(mode)
    seen = test.task < tasks_seen
    name = f"ll_iw{k}"
    d = test.x.shape[1]
    if "ll" not in s:  # no likelihood: reconstruction error only
        return {"recon_sse": float(s["sse"][seen].mean()), "recon_mse_pixel": float(s["sse"][seen].mean()) / d,
                "recon_sse_all_tasks": float(s["sse"].mean()),
                "per_task": {"recon_sse": per_task_means(s["sse"], test.task, num_tasks)}}
    row: dict[str, Any] = {
        name: float(s["ll"][seen].mean()),
        "recon_sse": float(s["sse"][seen].mean()),
        "recon_mse_pixel": float(s["sse"][seen].mean()) / d,
        f"{name}_all_tasks": float(s["ll"].mean()),
        "recon_sse_all_tasks": float(s["sse"].mean()),
        "per_task": {name: per_task_means(s["ll"], test.task, num_tasks),
                     "recon_sse": per_task_means(s["sse"], test.task, num_tasks)},
    }
    if "elbo_mixture" in s:  # CN-DPM's own estimator (its README reports bits/dim)
        e = float(s["elbo_mixture"][seen].mean())
        row[f"elbo{elbo_samples}_mixture"] = e
        row[f"elbo{elbo_samples}_mixture_bpd"] = -e / math.log(2) / d
    if len(components) > 1:
        row[f"{name}_selected"] = row[name]
        row[f"{name}_mixture"] = float(s["mixture"][seen].mean())
        row["mixture_weights"] = "uniform" if weights is None else [round(float(w), 6) for w in weights / weights.sum()]
        row["per_task"][f"{name}_mixture"] = per_task_means(s["mixture"], test.task, num_tasks)
        row["component_share"] = torch.bincount(s["choice"], minlength=len(components)).div(len(test.x)).tolist()
    return row


@torch.no_grad()
def _reconstruct(components: list, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Reconstructions ``(N, D)``; in a mixture, by the component with the best 10-sample ELBO per image."""
    if len(components) == 1:
        return components[0].reconstruct(x)
    best = torch.stack([c.elbo(x, 10, generator) for c in components]).argmax(0)
    out = torch.empty_like(x)
    for j, c in enumerate(components):
        m = best == j
        if m.any():
            out[m] = c.reconstruct(x[m])
    return out


@torch.no_grad()
def evaluate_generation(components, test: TestSet, tasks_seen: int, cfg: EvalConfig, shape: tuple[int, ...],
                        classifier, classifier_info: dict, generator: torch.Generator) -> dict:
    """FID / IS of generated images and of reconstructions against random test images of the tasks seen.

    ``cfg.fid_reference`` test images (a subset drawn with ``cfg.binarize_seed``, never the first N
    of a class-sorted set) are the reference and are also reconstructed; ``cfg.fid_generated``
    images are sampled (a mixture: equal shares per component). Keys name the feature network.
    """
    from .fid import fid_from_features, inception_fid, inception_score

    components = list(components) if isinstance(components, (list, tuple)) else [components]
    modes = [c.training for c in components]
    for c in components:
        c.eval()
    try:
        pool = torch.nonzero(test.task < tasks_seen).squeeze(1)
        pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(cfg.binarize_seed))
        real = test.x[pool[pick[: cfg.fid_reference]]]
        recon = _reconstruct(components, real, generator)
        shares = [cfg.fid_generated // len(components) + (j < cfg.fid_generated % len(components))
                  for j in range(len(components))]
        generated = torch.cat([c.sample(n, generator) for c, n in zip(components, shares) if n > 0])
    finally:
        for c, mode in zip(components, modes):
            c.train(mode)
    real, generated, recon = real.cpu(), generated.cpu(), recon.cpu()  # the feature networks run on the CPU
    f_real, l_real = classifier.embed(real)
    f_gen, l_gen = classifier.embed(generated)
    f_rec, l_rec = classifier.embed(recon)
    row = {"fid_classifier_gen": fid_from_features(f_gen, f_real),
           "fid_classifier_recon": fid_from_features(f_rec, f_real),
           "is_classifier_gen": inception_score(l_gen, cfg.is_splits)[0],
           "is_classifier_recon": inception_score(l_rec, cfg.is_splits)[0],
           "is_classifier_real": inception_score(l_real, cfg.is_splits)[0],
           "fid_classifier_name": classifier_info["name"],
           "fid_classifier_test_acc": classifier_info["test_acc"],
           "fid_generated": int(len(generated)), "fid_reference": int(len(real))}
    if cfg.fid_inception:  # the weights file's sha256 is checked (eval.fid_inception_sha256) and recorded
        row.update(inception_fid(real, generated, recon, shape, cfg))
    return row
