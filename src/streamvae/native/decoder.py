"""The native path's computations: the decoder + Bernoulli likelihood as one autograd node, the
reparameterisation as one autograd node, and the blocked evaluation without autograd.

Each computes exactly the terms of ``VAE.log_weights`` (``models/vae.py``, the reference) for the
``eps`` it is given; they differ from it only in fp32 rounding.

* ``_DecoderBernoulli``: what ``decode(z).log_prob(x)`` computes, with the backward pass written
  out: per hidden layer one ``mm`` and one native pass (bias, activation, a column of ones);
  backward two matmuls per layer and one native pass for the activation derivative (read from the
  saved outputs: tanh' = 1 - y^2, relu' = [y > 0]). The output layer's logits are overwritten by the
  native code with ``x - sigmoid(l)``, the only ``R x D`` tensor the backward pass needs.
* ``_Reparameterize``: ``z = loc + scale * eps`` and ``(sum eps^2 - sum z^2) / 2`` in one node.
* ``log_weights_nograd``: blocks of about ``block_rows()`` decoder rows (k x images) so that the
  activations stay in cache, every intermediate in buffers allocated once per call.
"""
from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from . import clib

_BLOCK_ROWS = 1024  # decoder rows per thread and block in log_weights_nograd (stay in L2)


def block_rows() -> int:
    return _BLOCK_ROWS * max(1, torch.get_num_threads())


class _Reparameterize(torch.autograd.Function):
    """``z = loc + scale * eps`` and ``(sum eps^2 - sum z^2) / 2`` (log p(z) - log q(z|x) without the
    log sigma term), with the backward written out: ``dz = g_z - g_half z``, ``d loc = sum dz``,
    ``d scale = sum dz eps`` over the sample dimensions."""

    @staticmethod
    def forward(ctx, loc, scale, eps):  # type: ignore[override]
        z = torch.addcmul(loc, scale, eps)
        sq = eps * eps
        half = sq.sub_(z * z).sum(-1).mul_(0.5)
        ctx.save_for_backward(eps, z)
        ctx.shapes = (loc.shape, scale.shape)
        return z, half

    @staticmethod
    def backward(ctx, g_z, g_half):  # type: ignore[override]
        eps, z = ctx.saved_tensors
        if g_half is None:
            dz = g_z
        elif g_z is None:
            dz = z * g_half.unsqueeze(-1).neg()
        else:
            dz = torch.addcmul(g_z, g_half.unsqueeze(-1), z, value=-1.0)
        g_loc = dz.sum_to_size(ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        g_scale = (dz * eps).sum_to_size(ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return g_loc, g_scale, None


class _DecoderBernoulli(torch.autograd.Function):
    """Hidden activations are kept as ``[h, 1]`` (a column of ones beside each layer's output, and
    beside z): every weight gradient then comes with its bias gradient from one product
    ``g^T [h, 1]``, and the output layer's ``[h g_out, g_out]`` is one row scaling."""

    @staticmethod
    def forward(ctx, z, x, lib, kinds, bf16, *params):  # type: ignore[override]
        # bf16 (precision=bf16): the products and the large activations in bf16, the weights cast
        # once per call, biases, the likelihood sums and every returned gradient in fp32
        dt = torch.bfloat16 if bf16 else z.dtype
        weights = [p.detach().to(dt) if i % 2 == 0 else p for i, p in enumerate(params)]
        r, zd = z.shape
        z1 = torch.empty(r, zd + 1, dtype=dt)  # [z, 1]
        z1[:, :zd] = z
        z1[:, zd] = 1.0
        h = z.to(dt)
        outs = []
        for i, kind in enumerate(kinds):  # one matmul, then bias + activation + ones in one pass
            h1 = clib.act_forward(lib, torch.mm(h, weights[2 * i].t()), params[2 * i + 1], kind)
            outs.append(h1)
            h = h1[:, :-1]
        g = torch.mm(h, weights[-2].t())  # logits without bias; the C code adds it, then writes x - sigmoid
        out = clib.bernoulli_loglik(lib, g, x, bias=params[-1], grad=g)
        ctx.save_for_backward(z1, g, *outs, *weights[0::2])
        ctx.kinds, ctx.lib, ctx.dt = kinds, lib, dt
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        z1, g, *rest = ctx.saved_tensors
        kinds, lib, dt = ctx.kinds, ctx.lib, ctx.dt
        n = len(kinds)
        outs, weights = rest[:n], rest[n:]  # weights[i]: layer i's weight (the output layer last)
        need = ctx.needs_input_grad[5:]
        grads: list[torch.Tensor | None] = [None] * (2 * len(weights))
        grad_out = grad_out.contiguous()
        h1 = outs[-1]
        hd = h1.shape[1] - 1
        if need[-2] or need[-1]:
            gwb = torch.mm((h1 * grad_out.to(dt).unsqueeze(1)).t(), g).float()  # (H + 1, D): [grad W, grad b]^T
            grads[-2], grads[-1] = gwb[:hd].t().contiguous(), gwb[hd]
        # first layer whose parameters (or z) need a gradient: the chain stops below it
        lowest = 0 if ctx.needs_input_grad[0] else next(
            (i for i in range(n) if need[2 * i] or need[2 * i + 1]), n)
        if lowest == n:
            return (None, None, None, None, None, *grads)
        gh = torch.mm(g, weights[-1])  # (R, H): d/d h of the last hidden layer, times grad_out below
        clib.act_backward(lib, gh, h1[:, :hd], kinds[-1], scale=grad_out)
        gz = None
        for i in reversed(range(lowest, n)):
            prev1 = outs[i - 1] if i > 0 else z1  # [input, 1]
            k = prev1.shape[1] - 1
            if need[2 * i] or need[2 * i + 1]:
                gwb = torch.mm(gh.t(), prev1).float()  # (H, in + 1): [grad W, grad b]
                grads[2 * i] = gwb[:, :k].contiguous() if need[2 * i] else None
                grads[2 * i + 1] = gwb[:, k].contiguous() if need[2 * i + 1] else None
            if i > lowest or (i == 0 and ctx.needs_input_grad[0]):
                nxt = torch.mm(gh, weights[i])
                if i > 0:
                    clib.act_backward(lib, nxt, prev1[:, :k], kinds[i - 1])
                    gh = nxt
                else:
                    gz = nxt.float()
        return (gz, None, None, None, None, *grads)


def decoder_loglik(lib, decoder: nn.Sequential, to_x: nn.Linear, z: torch.Tensor, x: torch.Tensor,
                   kinds: tuple[str, ...], bf16: bool = False) -> torch.Tensor:
    """Bernoulli ``log p(x | z)`` through ``decoder`` then ``to_x``: ``z: (..., B, Z)``, ``x: (B, D)``
    (``bf16``: the products and activations in bf16, the result fp32)."""
    lead = z.shape[:-1]
    params = []
    for block in decoder:
        linear = cast(nn.Linear, cast(nn.Sequential, block)[0])  # each block: Sequential(Linear, activation)
        params += [linear.weight, linear.bias]
    params += [to_x.weight, to_x.bias]
    z2 = z.reshape(-1, z.shape[-1])
    if not z2.is_contiguous():
        z2 = z2.contiguous()
    out = _DecoderBernoulli.apply(z2, x.contiguous(), lib, kinds, bf16, *params)
    return out.reshape(lead)


def log_weights_grad(lib, model, x: torch.Tensor, eps: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor,
                     kinds: tuple[str, ...], bf16: bool = False) -> torch.Tensor:
    """``(k, B)`` log-weights with autograd: the two nodes above plus ``sum log sigma`` (``bf16``: the
    decoder's products in bf16; the reparameterisation and every sum in fp32)."""
    if loc.requires_grad or scale.requires_grad:
        z, half = _Reparameterize.apply(loc, scale, eps)  # one autograd node instead of eight
    else:
        z = torch.addcmul(loc, scale, eps)  # (k, B, Z)
        half = (eps * eps - z * z).sum(-1).mul_(0.5)
    log_sigma = torch.log(scale).sum(-1)  # (B,)
    return decoder_loglik(lib, model.decoder, model.to_x, z, x, kinds, bf16) + (half + log_sigma)


def log_weights_nograd(lib, model, x: torch.Tensor, eps: torch.Tensor, loc: torch.Tensor,
                       scale: torch.Tensor, kinds: tuple[str, ...]) -> torch.Tensor:
    """``(k, B)`` log-weights without autograd: blocks of about ``block_rows()`` decoder rows, every
    intermediate in buffers allocated once per call (fresh pages cost more than the arithmetic on
    them). Per block: ``addmm`` + in-place activation per hidden layer, one ``mm`` for the logits and
    one native pass (bias, ``x . l``, softplus). The result does not depend on the blocking."""
    k, b, zd = eps.shape
    kk = max(1, min(k, block_rows() // b))
    rows = kk * b
    w, bias = model.to_x.weight, model.to_x.bias
    log_sigma = torch.log(scale).sum(-1)  # (B,)
    opts: dict[str, Any] = {"dtype": eps.dtype, "device": eps.device}
    zbuf, sq = torch.empty(kk, b, zd, **opts), torch.empty(kk, b, zd, **opts)
    hbufs = [torch.empty(rows, m[0].out_features, **opts) for m in model.decoder]
    logits = torch.empty(rows, w.shape[0], **opts)
    out = torch.empty(k, b, **opts)
    xs = x.contiguous()
    for j in range(0, k, kk):
        m = min(kk, k - j)
        r = m * b
        e = eps[j:j + m]
        z = torch.addcmul(loc, scale, e, out=zbuf[:m])
        # log p(z) - log q(z|x) = (sum eps^2 - sum z^2) / 2 + sum log sigma
        lpq = torch.mul(e, e, out=sq[:m]).sum(-1)
        lpq.sub_(torch.mul(z, z, out=sq[:m]).sum(-1)).mul_(0.5)
        h = z.view(r, zd)
        for layer, kind, buf in zip(model.decoder, kinds, hbufs):
            h = torch.addmm(layer[0].bias, h, layer[0].weight.t(), out=buf[:r])
            h = h.tanh_() if kind == "tanh" else h.relu_()
        lx = clib.bernoulli_loglik(lib, torch.mm(h, w.t(), out=logits[:r]), xs, bias=bias)
        torch.add(lx.view(m, b), lpq, out=out[j:j + m]).add_(log_sigma)
    return out
