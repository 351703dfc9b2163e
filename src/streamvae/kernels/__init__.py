"""Small native kernels, compiled on first use; torch code is the fallback and the reference.

streamvae is pure Python, but the Bernoulli decoder head (one exp per logit, 784 logits per decoder
row) is where a CPU step spends the time its matmuls do not: as separate torch ops it makes 5-8
passes over the logits. ``bernoulli.c`` does it in one pass (plus the hidden layers' bias +
activation, their derivatives, and Philox normals for the VAE's noise). It is compiled here with the system C
compiler (``$CC``, else ``cc``/``gcc``) into the user cache, keyed by the source, the compiler and
the CPU flags, and loaded with ctypes. Nothing happens at import time.

    from streamvae import kernels
    lib = kernels.native()          # None when disabled or when no compiler works (torch path then)

Switches: ``set_enabled(False)`` (the run config's ``kernels: torch`` does this) or the environment
variable ``STREAMVAE_KERNELS=torch``. Both paths compute the same terms and agree to fp32 rounding
for the same draws; the draws themselves differ (Philox here, ``torch.randn`` on the torch path).
``docs/kernels.md`` has the details.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

_SOURCE = Path(__file__).with_name("bernoulli.c")
_FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-mrecip", "-fopenmp", "-shared", "-fPIC"]
_lock = threading.Lock()
_state: dict = {"lib": None, "tried": False, "enabled": None, "error": None}


def set_enabled(flag: bool | None) -> None:
    """Force native kernels on/off for this process (``None``: back to the environment's choice)."""
    _state["enabled"] = flag


def enabled() -> bool:
    if _state["enabled"] is not None:
        return bool(_state["enabled"])
    return os.environ.get("STREAMVAE_KERNELS", "auto").lower() not in ("torch", "0", "off", "none")


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    import platform
    return platform.machine() + platform.processor()


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _build(cc: str) -> Path:
    src = _SOURCE.read_bytes()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(src + version.encode() + _cpu_flags().encode() + " ".join(_FLAGS).encode())
    from ..utils import cache_dir

    out = cache_dir() / "kernels" / f"bernoulli-{key.hexdigest()[:16]}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        res = subprocess.run([cc, *_FLAGS, str(_SOURCE), "-o", tmp, "-lm"], capture_output=True,
                             text=True, timeout=300)
        if res.returncode != 0:
            raise RuntimeError(f"{cc} failed: {res.stderr.strip()[-500:]}")
        os.replace(tmp, out)  # atomic: a concurrent process sees the old name or the whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def native():
    """The loaded kernel library, or ``None`` (disabled, or no working compiler: a warning, once)."""
    if not enabled():
        return None
    if _state["tried"]:
        return _state["lib"]
    with _lock:
        if not _state["tried"]:
            try:
                import torch  # noqa: F401  (its OpenMP runtime must be loaded first: ours is the same one)
                cc = _compiler()
                if cc is None:
                    raise RuntimeError("no C compiler found (set CC)")
                lib = ctypes.CDLL(str(_build(cc)))
                i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
                lib.bernoulli_loglik.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, i64, ptr, ptr, cint]
                lib.act_backward.argtypes = [ptr, i64, ptr, i64, ptr, i64, i64, cint, cint]
                lib.act_forward.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, cint, cint, cint]
                lib.philox_normal.argtypes = [ptr, i64, ctypes.c_uint64, cint]
                for f in (lib.bernoulli_loglik, lib.act_backward, lib.act_forward, lib.philox_normal):
                    f.restype = None
                _state["lib"] = lib
            except Exception as e:  # any failure: the torch path is always correct
                _state["error"] = str(e)
                warnings.warn(f"streamvae: native kernels unavailable ({e}); using the torch path "
                              "(slower, same results up to fp32 rounding)", RuntimeWarning, stacklevel=2)
            _state["tried"] = True
    return _state["lib"]


def status() -> str:
    """One line for logs: which path the Bernoulli head takes."""
    if not enabled():
        return "torch (native kernels disabled)"
    lib = native()
    return "native (compiled C, OpenMP)" if lib is not None else f"torch ({_state['error']})"


def bernoulli_loglik(lib, logits, x, bias=None, grad=None):
    """Row log-likelihoods ``(R,)`` of fp32 logits ``(R, D)`` (+ ``bias: (D,)``; row stride may exceed
    D) given images ``x: (B, D)`` (row r of the logits belongs to image ``r % B``). With ``grad``
    (same layout as the logits, possibly the logits themselves) it also receives
    ``x - sigmoid(logits + bias)``, the gradient with respect to the logits."""
    import torch
    r, d = logits.shape
    b = x.shape[0]
    if not (logits.dtype == x.dtype == torch.float32 and logits.stride(1) == 1 and x.stride(1) == 1
            and x.shape[1] == d and r % b == 0):
        raise ValueError("bernoulli_loglik: fp32 row-major logits (R, D) and x (B, D) with R % B == 0")
    if grad is not None and grad.stride() != logits.stride():
        raise ValueError("bernoulli_loglik: grad must have the logits' layout")
    if bias is None:
        bias = torch.zeros(d)
    bias = bias.detach().contiguous()
    out = torch.empty(r, dtype=torch.float32, device=logits.device)
    lib.bernoulli_loglik(logits.data_ptr(), logits.stride(0), bias.data_ptr(), x.data_ptr(), x.stride(0), b,
                         r, d, out.data_ptr(), 0 if grad is None else grad.data_ptr(), torch.get_num_threads())
    return out


ACTIVATION_KINDS = {"identity": 0, "tanh": 1, "relu": 2}


def act_backward(lib, g, y, kind: str, scale=None) -> None:
    """In place: ``g *= scale[:, None] * act'(.)`` from the activation's output ``y`` (tanh or relu)."""
    import torch
    rows, n = g.shape
    if not (g.stride(1) == 1 and y.stride(1) == 1 and y.shape == g.shape and g.dtype == y.dtype == torch.float32):
        raise ValueError("act_backward: fp32 row-major g and y of the same shape")
    sp = 0
    if scale is not None:
        scale = scale.contiguous()
        sp = scale.data_ptr()
    lib.act_backward(g.data_ptr(), g.stride(0), y.data_ptr(), y.stride(0), sp, rows, n,
                     ACTIVATION_KINDS[kind], torch.get_num_threads())


def act_forward(lib, a, bias, kind: str, ones: bool = True):
    """``[act(a + bias), 1]``: a new ``(R, n + 1)`` tensor (``(R, n)`` without ``ones``) from ``a: (R, n)``."""
    import torch
    rows, n = a.shape
    if not (a.stride(1) == 1 and a.dtype == torch.float32 and bias.shape == (n,)):
        raise ValueError("act_forward: fp32 row-major a (R, n) and bias (n,)")
    out = torch.empty(rows, n + int(ones), dtype=a.dtype)
    bias = bias.detach().contiguous()
    lib.act_forward(a.data_ptr(), a.stride(0), bias.data_ptr(), out.data_ptr(), out.stride(0), rows, n,
                    ACTIVATION_KINDS[kind], int(ones), torch.get_num_threads())
    return out


def randn(shape, generator=None, dtype=None, device=None):
    """Standard normal draws of ``shape``: the native Philox kernel keyed by one 63-bit draw from
    ``generator`` (fp32 on the CPU, kernels on), else ``torch.randn`` with that generator."""
    import torch
    dtype = dtype or torch.get_default_dtype()
    lib = native() if (dtype == torch.float32 and (device is None or torch.device(device).type == "cpu")) else None
    if lib is None:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)
    key = int(torch.randint(0, 2 ** 63 - 1, (1,), generator=generator, dtype=torch.int64))
    out = torch.empty(shape, dtype=torch.float32)
    lib.philox_normal(out.data_ptr(), out.numel(), key, torch.get_num_threads())
    return out
