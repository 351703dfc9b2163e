"""Training precision (``precision: fp32 | bf16``) and what the machine's matrix units are.

bf16 runs the training step's matrix products in bfloat16 under ``torch.autocast``: parameters,
gradients and optimiser state stay fp32 (the master weights), and the models keep in fp32 what
needs range or precision (per-image likelihood sums, log-sum-exp, the KL). Evaluation
(``ll_iw{k}``, reconstructions, samples, FID) always runs in fp32. A device without native bf16
arithmetic falls back to fp32 with one warning; a CPU whose bf16 instructions are there but
multiply no faster than fp32 (Intel's AVX512-BF16 without AMX: one port for the bf16 dot product,
two for fp32 FMAs) keeps bf16, as asked, with one warning that gives the measured ratio.
``auto`` picks, once per process, the faster of the two for this machine: bf16 where the CPU has
native bf16 and a bf16 product measures at least ``AUTO_MIN_SPEEDUP`` times as fast as fp32 (AMD's
AVX512-BF16, AMX), else fp32 (Intel's AVX512-BF16 without AMX, CPUs without bf16, and GPUs, where
bf16 training is not validated yet). ``results.json`` and the checkpoints record the precision that
was used.

    prec = resolve("bf16", torch.device("cpu"))    # "bf16" or "fp32" (with a warning)
    with autocast(prec, torch.device("cpu")):
        loss = -model.elbo(x, samples=50).mean()   # matmuls in bf16, sums in fp32
"""
from __future__ import annotations

import contextlib
import functools
import platform
import time
import warnings

import torch

PRECISIONS = ("fp32", "bf16", "auto")
# precision=auto trains in bf16 only where a bf16 product measures at least this much faster than fp32
# (measured: AMD EPYC AVX512-BF16 2.1-2.2x, Intel AVX512-BF16 without AMX 0.55-0.6x; BENCHMARKS.md)
AUTO_MIN_SPEEDUP = 1.3


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags") or line.startswith("Features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def matrix_isa() -> str:
    """The widest matrix instructions this CPU offers for bf16/fp32 products, in words:
    ``AMX-BF16``, ``AVX512-BF16``, ``AVX512``, ``AVX2``, or torch's own capability string."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    if "avx512f" in flags:
        return "AVX512"
    if "avx2" in flags:
        return "AVX2"
    try:
        return torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        return platform.machine()


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> str:
    """One line naming the CPU and its matrix instructions (benchmarks print it)."""
    return f"{cpu_name()}; matrix instructions: {matrix_isa()}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices natively (CPU: AMX-BF16 or AVX512-BF16)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


@functools.lru_cache(maxsize=1)
def cpu_bf16_speed_ratio(rows: int = 1024, inner: int = 256, cols: int = 784, repeats: int = 10) -> float:
    """How many times faster a bf16 matrix product runs than an fp32 one on this CPU, measured now
    (best of ``repeats`` interleaved rounds each, a decoder-like ``(rows, inner) @ (inner, cols)``
    product, on one thread; about 100 ms, once per process). Measured, not read from the flags,
    because the flags do not tell: AMD's AVX512-BF16 runs at about 2.1x fp32, Intel's without AMX
    at about 0.6x. One thread, because the ratio is a property of the core's instructions and a
    product split over threads waits for the slowest of them: beside another run on a 2-core AMD
    EPYC, two threads read 1.9x to 5.8x, one thread 2.05x to 2.13x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _bf16_ratio(rows, inner, cols, repeats)
    finally:
        torch.set_num_threads(threads)


def _bf16_ratio(rows: int, inner: int, cols: int, repeats: int) -> float:
    g = torch.Generator().manual_seed(0)  # its own generator: the run's global RNG state is not touched
    operands = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(rows, inner, generator=g).to(dtype)
        b = torch.randn(inner, cols, generator=g).to(dtype)
        a @ b  # warm-up: oneDNN builds its kernel on the first call
        operands[dtype] = (a, b)
    times = {dtype: float("inf") for dtype in operands}
    for _ in range(repeats):  # interleaved, so that a disturbance does not fall on one precision only
        for dtype, (a, b) in operands.items():
            t0 = time.perf_counter()
            a @ b
            times[dtype] = min(times[dtype], time.perf_counter() - t0)
    return times[torch.float32] / max(times[torch.bfloat16], 1e-9)


_warned: set[str] = set()


def resolve(precision: str, device: torch.device) -> str:
    """``precision`` as it will run on ``device``: bf16 where the device has native bf16, else
    fp32 with one warning (emulated bf16 would be slower than fp32, not faster); ``auto``: the
    faster of the two on this CPU, without a warning (fp32 on other devices)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        fast = (device.type == "cpu" and bf16_native(device) and cpu_bf16_speed_ratio() >= AUTO_MIN_SPEEDUP)
        return "bf16" if fast else "fp32"
    if precision == "bf16" and not bf16_native(device):
        key = f"{device.type}"
        if key not in _warned:
            _warned.add(key)
            warnings.warn(f"precision=bf16: this {device.type.upper()} has no native bf16 matrix instructions "
                          f"({matrix_isa() if device.type == 'cpu' else 'no bf16 support'}); training in fp32",
                          RuntimeWarning, stacklevel=2)
        return "fp32"
    if precision == "bf16" and device.type == "cpu" and "cpu-slow" not in _warned:
        ratio = cpu_bf16_speed_ratio()
        if ratio < 1.0:
            _warned.add("cpu-slow")
            warnings.warn(f"precision=bf16: on this CPU ({cpu_name()}, {matrix_isa()}) a bf16 matrix product "
                          f"measured {ratio:.2f}x the speed of fp32, so training will be slower than with "
                          f"precision=fp32 (bf16 pays on AMX, or on AMD's AVX512-BF16); training in bf16 as asked",
                          RuntimeWarning, stacklevel=2)
    return precision


def autocast(precision: str, device: torch.device):
    """The context the training step runs in: bf16 autocast for ``bf16``, nothing for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def active(device_type: str = "cpu") -> bool:
    """Whether a bf16 autocast region is active (the native kernels and the models ask)."""
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.bfloat16
