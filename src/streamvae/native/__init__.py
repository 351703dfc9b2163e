"""The native fast path of the MLP VAE's importance log-weights: one decision, one entry point.

``models/vae.py`` is the reference: ``log w = decode(z).log_prob(x) + log p(z) - log q(z|x)`` with
``z = loc + scale * eps``. A VAE whose ``native`` flag is set (the run config's ``kernels:
auto|native|torch`` sets it, see ``loop.use_kernels``) hands the same ``eps`` to
:func:`log_weights` whenever :func:`supports` says yes. The result is the same terms, computed with
the C code of ``bernoulli.c`` (compiled on first use, ``clib.py``) and hand-written autograd
nodes (``decoder.py``); it differs from the reference by fp32 rounding only. The noise is always
``torch.randn(..., generator=generator)``, drawn by the VAE before it decides, so the same seed gives
the same numbers on both paths, on every machine. docs/native.md has the details.

    if vae.native and native.supports(vae, x, q):
        lw = native.log_weights(vae, x, eps, q)      # eps: (k, B, Z) -> (k, B)
"""
from __future__ import annotations

import torch
from torch.distributions import Normal

from . import decoder
from .clib import ACTIVATION_KINDS, error, library, status

__all__ = ["supports", "log_weights", "library", "status", "error"]


def _decoder_kinds(model) -> tuple[str, ...] | None:
    """The activation names of a decoder of (Linear, Tanh|ReLU) blocks, else ``None``."""
    from ..models.nets import ACTIVATIONS  # at call time: models imports this package

    kinds = []
    for block in model.decoder:
        if not (isinstance(block, torch.nn.Sequential) and len(block) == 2
                and isinstance(block[0], torch.nn.Linear)):
            return None
        name = next((n for n, cls in ACTIVATIONS.items() if type(block[1]) is cls), None)
        if name not in ACTIVATION_KINDS or name == "identity":
            return None
        kinds.append(name)
    return tuple(kinds)


def _reference_decode(model) -> bool:
    """``model.decode`` is ``models.vae.VAE.decode`` (a subclass's own may compute anything), told by
    its name: importing ``VAE`` here would make an import cycle (``models.vae`` imports this package)."""
    f = getattr(type(model), "decode", None)
    return getattr(f, "__module__", None) == "streamvae.models.vae" and getattr(f, "__qualname__", None) == "VAE.decode"


def supports(model, x: torch.Tensor, q: Normal) -> bool:
    """Whether :func:`log_weights` computes ``model.log_weights(x, k, q=q)``: Bernoulli pixels through
    ``VAE.decode`` (not overridden), a decoder of ``Linear`` + ``Tanh``/``ReLU`` blocks and a
    ``Linear`` output layer, fp32 CPU parameters and tensors, ``x: (B, D)`` without a gradient,
    ``q`` over ``(B, Z)``, and the native library loaded (it is built here on first use)."""
    w = getattr(model, "to_x", None)
    return (_reference_decode(model) and model.cfg.likelihood == "bernoulli"
            and isinstance(w, torch.nn.Linear) and w.weight.dtype == torch.float32 and w.weight.device.type == "cpu"
            and x.dtype == torch.float32 and x.device.type == "cpu" and x.dim() == 2 and not x.requires_grad
            and q.loc.shape == (x.shape[0], model.cfg.latent) and q.loc.dtype == torch.float32
            and _decoder_kinds(model) is not None
            and library() is not None)


def log_weights(model, x: torch.Tensor, eps: torch.Tensor, q: Normal) -> torch.Tensor:
    """``log p(x|z) + log p(z) - log q(z|x)`` for ``z = q.loc + q.scale * eps``: ``(k, B)``.

    ``x: (B, D)``, ``eps: (k, B, Z)``; only where :func:`supports` is true. With autograd: the
    reparameterisation and the decoder + likelihood as two autograd nodes; without: blocks of decoder
    rows in reused buffers. Inside a bf16 autocast region (``precision=bf16`` training) the decoder's
    products and activations run in bf16 (the likelihood sums and returned gradients stay fp32).
    """
    lib, kinds = library(), _decoder_kinds(model)
    assert kinds is not None  # called only where supports() is true, which requires the kinds
    if torch.is_grad_enabled():
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        return decoder.log_weights_grad(lib, model, x, eps, q.loc, q.scale, kinds, bf16=bf16)
    return decoder.log_weights_nograd(lib, model, x, eps, q.loc, q.scale, kinds)
