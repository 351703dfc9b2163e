"""Random affine augmentation in torch, like Keras' ImageDataGenerator as DEMC uses it (DEMC spec 2.5).

Per image: a rotation drawn from U(-r, r) degrees, shifts drawn from U(-s, s) of the width and of the
height, and a horizontal flip with probability 1/2; bilinear sampling, edge pixels repeated outside
the image (Keras ``fill_mode='nearest'``). Every draw comes from the generator passed in.

    x_aug = augment(x, (1, 28, 28), generator=g, rotation=20.0, shift=0.1, hflip=True)   # (B, D)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator | None = None,
            rotation: float = 20.0, shift: float = 0.1, hflip: bool = True) -> torch.Tensor:
    """Augmented copy of ``x: (B, C*H*W)`` (or ``(B, C, H, W)``), same shape as ``x``."""
    n = x.shape[0]
    images = x.reshape((n,) + tuple(shape))
    dev = x.device  # draws on the data's device (the generator's)
    angle = (torch.rand(n, generator=generator, device=dev) * 2 - 1) * math.radians(rotation)
    # affine_grid works in [-1, 1] coordinates, so a shift of s * width is 2 s there
    t = (torch.rand(n, 2, generator=generator, device=dev) * 2 - 1) * (2 * shift)
    flip = torch.ones(n, device=dev)
    if hflip:
        flip = torch.where(torch.rand(n, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output pixel (u, v) reads the input at R (flip * u, v) + t
    theta = torch.stack([torch.stack([cos * flip, -sin, t[:, 0]], 1),
                         torch.stack([sin * flip, cos, t[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(x.shape)
