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

__all__ = ["supports", "tensors_supported", "log_weights", "decoder_kinds", "library", "status", "error"]


def decoder_kinds(activations: tuple[str, ...], likelihood: str) -> tuple[str, ...] | None:
    """The ``kinds`` the C code is given for a decoder built with these hidden ``activations`` (names of
    ``model.decoder_activations``) and pixel ``likelihood``; ``None`` where it has no code for them."""
    if likelihood != "bernoulli" or not all(a in ACTIVATION_KINDS and a != "identity" for a in activations):
        return None
    return tuple(activations)


def supports(model, x: torch.Tensor, q: Normal) -> bool:
    """Whether :func:`log_weights` computes ``model.log_weights(x, k, q=q)``: the model says what it
    built (``model.native_decoder``: the activation names of a decoder of ``Linear`` + ``Tanh``/``ReLU``
    blocks with a ``Linear`` Bernoulli output layer and the reference ``decode``, else ``None``); here
    the call is checked: fp32 CPU parameters and tensors, ``x: (B, D)`` without a gradient, ``q`` over
    ``(B, Z)``, and the native library loaded (it is built here on first use)."""
    return (model.native_decoder is not None and q.loc.shape == (x.shape[0], model.cfg.latent)
            and tensors_supported(model.to_x.weight, x, q))


def tensors_supported(weight: torch.Tensor, x: torch.Tensor, q: Normal) -> bool:
    """The tensor checks every caller of the native pass shares: an fp32 CPU output-layer ``weight``,
    ``x: (B, D)`` fp32 on the CPU without a gradient, an fp32 ``q``, and the library loaded."""
    return (weight.dtype == torch.float32 and weight.device.type == "cpu" and x.dtype == torch.float32
            and x.device.type == "cpu" and x.dim() == 2 and not x.requires_grad
            and q.loc.dtype == torch.float32 and library() is not None)


def log_weights(model, x: torch.Tensor, eps: torch.Tensor, q: Normal) -> torch.Tensor:
    """``log p(x|z) + log p(z) - log q(z|x)`` for ``z = q.loc + q.scale * eps``: ``(k, B)``.

    ``x: (B, D)``, ``eps: (k, B, Z)``; only where :func:`supports` is true. With autograd: the
    reparameterisation and the decoder + likelihood as two autograd nodes; without: blocks of decoder
    rows in reused buffers. Inside a bf16 autocast region (``precision=bf16`` training) the decoder's
    products and activations run in bf16 (the likelihood sums and returned gradients stay fp32).
    """
    lib, kinds = library(), model.native_decoder  # not None: called only where supports() is true
    if torch.is_grad_enabled():
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        return decoder.log_weights_grad(lib, model, x, eps, q.loc, q.scale, kinds, bf16=bf16)
    return decoder.log_weights_nograd(lib, model, x, eps, q.loc, q.scale, kinds)
