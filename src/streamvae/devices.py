"""Where a run computes: the run config's ``device: auto | cpu | cuda``.

``auto`` picks CUDA when ``torch.cuda.is_available()``, else the CPU. The model, the learner's
generator (so every draw of the learner), its memories, each arrival's batch and the test sets live
on that device; the stream, the probes' training set and the FID feature networks stay on the CPU,
and the native C kernels are the CPU path only (CUDA runs the torch path). On the CPU nothing
changes. A CUDA generator draws other numbers than a CPU one (the same distributions), so a CPU and a
CUDA run of one seed agree statistically, not bit for bit; ``results.json`` records the device.

    device = resolve_device(cfg.device)          # torch.device("cuda") or torch.device("cpu")
    g = torch.Generator(device=device).manual_seed(seed)
"""
from __future__ import annotations

import torch

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")  # what the run config's ``device`` accepts


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without CUDA is a ConfigError."""
    if name not in DEVICES:
        raise ConfigError(f"device={name!r} is not valid; choose one of: {', '.join(DEVICES)}")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            built = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ConfigError(f"device=cuda but CUDA is not available here (torch {torch.__version__}, {built}, "
                              f"{torch.cuda.device_count()} GPUs visible); use device=auto or device=cpu")
        return torch.device("cuda")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """``cpu`` or ``cuda (NVIDIA H100 80GB HBM3)``: what results.json records."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def to_device(test, device: torch.device):
    """A TestSet (``x``, ``y``, ``task``) on ``device``; the same object when it is already there."""
    if test.x.device.type == device.type:
        return test
    return type(test)(x=test.x.to(device), y=test.y.to(device), task=test.task.to(device))


__all__ = ["DEVICES", "resolve_device", "describe", "to_device"]
