"""The MLP decoder and its Bernoulli log-likelihood as one autograd node, on the native kernels.

What ``bernoulli_loglik(decoder(z), W, b, x)`` computes, with the backward pass written out: per
hidden layer one ``mm`` and one kernel pass (bias, activation, a column of ones); backward two
matmuls per layer and one kernel pass for the activation derivative (read from the saved outputs: tanh' = 1 - y^2,
relu' = [y > 0]). The output layer's logits are overwritten by the kernel with ``x - sigmoid(l)``,
the only ``R x D`` tensor the backward pass needs. Compared with autograd over separate ops this
saves about a dozen passes over the decoder activations and the graph bookkeeping of every op.

Used by :class:`~streamvae.models.vae.VAE` when the native kernels are loaded, the tensors are fp32
on the CPU and every decoder block is ``Linear`` + ``Tanh``/``ReLU``; otherwise the torch path runs.

    kinds = activation_kinds(vae.decoder)                         # None: use the torch path
    out = decoder_loglik(lib, vae.decoder, vae.to_x, z, x, kinds)  # z: (..., B, Z), x: (B, D) -> (..., B)
"""
from __future__ import annotations

import torch
from torch import nn

from .. import kernels

_KINDS = {nn.Tanh: "tanh", nn.ReLU: "relu"}


def activation_kinds(decoder: nn.Sequential) -> tuple[str, ...] | None:
    """``("tanh", "relu", ...)`` for a decoder of (Linear, Tanh|ReLU) blocks, else ``None``."""
    kinds = []
    for block in decoder:
        if not (isinstance(block, nn.Sequential) and len(block) == 2 and isinstance(block[0], nn.Linear)
                and type(block[1]) in _KINDS):
            return None
        kinds.append(_KINDS[type(block[1])])
    return tuple(kinds)


class _DecoderBernoulli(torch.autograd.Function):
    """Hidden activations are kept as ``[h, 1]`` (a column of ones beside each layer's output, and
    beside z): every weight gradient then comes with its bias gradient from one product
    ``g^T [h, 1]``, and the output layer's ``[h g_out, g_out]`` is one row scaling."""

    @staticmethod
    def forward(ctx, z, x, lib, kinds, *params):  # type: ignore[override]
        r, zd = z.shape
        z1 = torch.empty(r, zd + 1, dtype=z.dtype)  # [z, 1]
        z1[:, :zd] = z
        z1[:, zd] = 1.0
        h = z
        outs = []
        for i, kind in enumerate(kinds):  # one matmul, then bias + activation + ones in one pass
            h1 = kernels.act_forward(lib, torch.mm(h, params[2 * i].t()), params[2 * i + 1], kind)
            outs.append(h1)
            h = h1[:, :-1]
        g = torch.mm(h, params[-2].t())  # logits without bias; the kernel adds it, then writes x - sigmoid
        out = kernels.bernoulli_loglik(lib, g, x, bias=params[-1], grad=g)
        ctx.save_for_backward(z1, g, *outs, *params)
        ctx.kinds, ctx.lib = kinds, lib
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        z1, g, *rest = ctx.saved_tensors
        kinds, lib = ctx.kinds, ctx.lib
        n = len(kinds)
        outs, params = rest[:n], rest[n:]
        need = ctx.needs_input_grad[4:]
        grads: list[torch.Tensor | None] = [None] * len(params)
        grad_out = grad_out.contiguous()
        h1 = outs[-1]
        hd = h1.shape[1] - 1
        if need[-2] or need[-1]:
            gwb = torch.mm((h1 * grad_out.unsqueeze(1)).t(), g)  # (H + 1, D): [grad W, grad b]^T
            grads[-2], grads[-1] = gwb[:hd].t().contiguous(), gwb[hd]
        # first layer whose parameters (or z) need a gradient: the chain stops below it
        lowest = 0 if ctx.needs_input_grad[0] else next(
            (i for i in range(n) if need[2 * i] or need[2 * i + 1]), n)
        if lowest == n:
            return (None, None, None, None, *grads)
        gh = torch.mm(g, params[-2])  # (R, H): d/d h of the last hidden layer, times grad_out below
        kernels.act_backward(lib, gh, h1[:, :hd], kinds[-1], scale=grad_out)
        gz = None
        for i in reversed(range(lowest, n)):
            prev1 = outs[i - 1] if i > 0 else z1  # [input, 1]
            k = prev1.shape[1] - 1
            if need[2 * i] or need[2 * i + 1]:
                gwb = torch.mm(gh.t(), prev1)  # (H, in + 1): [grad W, grad b]
                grads[2 * i] = gwb[:, :k].contiguous() if need[2 * i] else None
                grads[2 * i + 1] = gwb[:, k].contiguous() if need[2 * i + 1] else None
            if i > lowest or (i == 0 and ctx.needs_input_grad[0]):
                nxt = torch.mm(gh, params[2 * i])
                if i > 0:
                    kernels.act_backward(lib, nxt, prev1[:, :k], kinds[i - 1])
                    gh = nxt
                else:
                    gz = nxt
        return (gz, None, None, None, *grads)


def decoder_loglik(lib, decoder: nn.Sequential, to_x: nn.Linear, z: torch.Tensor, x: torch.Tensor,
                   kinds: tuple[str, ...]) -> torch.Tensor:
    """Bernoulli ``log p(x | z)`` through ``decoder`` then ``to_x``: ``z: (..., B, Z)``, ``x: (B, D)``."""
    lead = z.shape[:-1]
    params = []
    for block in decoder:
        params += [block[0].weight, block[0].bias]
    params += [to_x.weight, to_x.bias]
    z2 = z.reshape(-1, z.shape[-1])
    if not z2.is_contiguous():
        z2 = z2.contiguous()
    out = _DecoderBernoulli.apply(z2, x.contiguous(), lib, kinds, *params)
    return out.reshape(lead)
