"""The native library: ``bernoulli.c`` compiled with the system C compiler on first use, loaded with ctypes.

It is compiled (``$CC``, else ``cc``/``gcc``/``clang``) into the user cache, under a name keyed by
the source, the compiler, the flags and the CPU flags, and loaded once per process; nothing happens
at import time. Any failure (no compiler, a failed build) gives one ``RuntimeWarning`` and
``library() -> None``: the model then takes the torch path, which is always correct.

    lib = library()                        # None when it cannot be built here
    out = bernoulli_loglik(lib, logits, x)  # (R,) row log-likelihoods

The wrappers check layouts and pass data pointers; ``native.decoder`` uses them.
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

import torch  # before the library: its OpenMP runtime is the one ours links to

_SOURCE = Path(__file__).with_name("bernoulli.c")
_FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-mrecip", "-fopenmp", "-shared", "-fPIC"]
_lock = threading.Lock()
_state: dict = {"lib": None, "tried": False, "error": None}


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


def _sidecar(lib: Path) -> Path:
    return lib.with_name(lib.name + ".sha256")  # "<size> <sha256>" of the library, written before it


def _intact(lib: Path) -> bool:
    """The cached library has the size and sha256 recorded when it was built (checked before ctypes
    maps it: a truncated file would be a bus error, not an exception)."""
    try:
        size, digest = _sidecar(lib).read_text().split()
        data = lib.read_bytes()
    except (OSError, ValueError):
        return False
    return len(data) == int(size) and hashlib.sha256(data).hexdigest() == digest


def _build(cc: str) -> Path:
    src = _SOURCE.read_bytes()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(src + version.encode() + _cpu_flags().encode() + " ".join(_FLAGS).encode())
    from ..utils import atomic_write_text, cache_dir

    out = cache_dir() / "native" / f"bernoulli-{key.hexdigest()[:16]}.so"
    if out.exists() and _intact(out):
        return out  # else damaged (a truncated copy would crash the process with SIGBUS): built again
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        res = subprocess.run([cc, *_FLAGS, str(_SOURCE), "-o", tmp, "-lm"], capture_output=True,
                             text=True, timeout=300)
        if res.returncode != 0:
            raise RuntimeError(f"{cc} failed: {res.stderr.strip()[-500:]}")
        built = Path(tmp).read_bytes()
        atomic_write_text(_sidecar(out), f"{len(built)} {hashlib.sha256(built).hexdigest()}\n")
        os.replace(tmp, out)  # atomic: a concurrent process sees the old name or the whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def library():
    """The loaded native library, or ``None`` when it cannot be built here (a warning, once)."""
    if _state["tried"]:
        return _state["lib"]
    with _lock:
        if not _state["tried"]:
            try:
                cc = _compiler()
                if cc is None:
                    raise RuntimeError("no C compiler found (set CC)")
                lib = ctypes.CDLL(str(_build(cc)))
                i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
                lib.bernoulli_loglik.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, i64, ptr, ptr, cint]
                lib.act_backward.argtypes = [ptr, i64, ptr, i64, ptr, i64, i64, cint, cint]
                lib.act_forward.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, cint, cint, cint]
                lib.bernoulli_loglik_bf16.argtypes = lib.bernoulli_loglik.argtypes
                lib.act_backward_bf16.argtypes = lib.act_backward.argtypes
                lib.act_forward_bf16.argtypes = lib.act_forward.argtypes
                for f in (lib.bernoulli_loglik, lib.act_backward, lib.act_forward, lib.bernoulli_loglik_bf16,
                          lib.act_backward_bf16, lib.act_forward_bf16):
                    f.restype = None
                _state["lib"] = lib
            except Exception as e:  # any failure: the torch path is always correct
                _state["error"] = str(e)
                warnings.warn(f"streamvae: native library unavailable ({e}); using the torch path "
                              "(slower, same results up to fp32 rounding)", RuntimeWarning, stacklevel=2)
            _state["tried"] = True
    return _state["lib"]


def error() -> str | None:
    """Why ``library()`` is ``None`` (after it was tried), else ``None``."""
    return _state["error"]


def status(used: bool) -> str:
    """One line for logs and results.json: which path the model takes (``used``: the native one)."""
    if used:
        return "native (compiled C, OpenMP)"
    return f"torch ({_state['error']})" if _state["error"] else "torch (native path off)"


def bernoulli_loglik(lib, logits, x, bias=None, grad=None):
    """Row log-likelihoods ``(R,)`` (fp32) of fp32 or bf16 logits ``(R, D)`` (+ fp32 ``bias: (D,)``; row
    stride may exceed D) given fp32 images ``x: (B, D)`` (row r of the logits belongs to image
    ``r % B``). With ``grad`` (the logits' dtype and layout, possibly the logits themselves) it also
    receives ``x - sigmoid(logits + bias)``, the gradient with respect to the logits."""
    r, d = logits.shape
    b = x.shape[0]
    if not (logits.dtype in _DTYPES and x.dtype == torch.float32 and logits.stride(1) == 1 and x.stride(1) == 1
            and x.shape[1] == d and r % b == 0):
        raise ValueError("bernoulli_loglik: fp32 or bf16 row-major logits (R, D) and fp32 x (B, D) with R % B == 0")
    if grad is not None and (grad.stride() != logits.stride() or grad.dtype != logits.dtype):
        raise ValueError("bernoulli_loglik: grad must have the logits' dtype and layout")
    if bias is None:
        bias = torch.zeros(d)
    bias = bias.detach().float().contiguous()
    out = torch.empty(r, dtype=torch.float32, device=logits.device)
    fn = lib.bernoulli_loglik if logits.dtype == torch.float32 else lib.bernoulli_loglik_bf16
    fn(logits.data_ptr(), logits.stride(0), bias.data_ptr(), x.data_ptr(), x.stride(0), b,
                         r, d, out.data_ptr(), 0 if grad is None else grad.data_ptr(), torch.get_num_threads())
    return out


_DTYPES = (torch.float32, torch.bfloat16)  # what the passes read and write (bf16: the *_bf16 functions)

# the activations the C code implements (its `kind` argument), by their name in models.nets.ACTIVATIONS
ACTIVATION_KINDS = {"identity": 0, "tanh": 1, "relu": 2}


def act_backward(lib, g, y, kind: str, scale=None) -> None:
    """In place: ``g *= scale[:, None] * act'(.)`` from the activation's output ``y`` (tanh or relu)."""
    rows, n = g.shape
    if not (g.stride(1) == 1 and y.stride(1) == 1 and y.shape == g.shape and g.dtype == y.dtype and g.dtype in _DTYPES):
        raise ValueError("act_backward: fp32 or bf16 row-major g and y of the same shape and dtype")
    sp = 0
    if scale is not None:
        scale = scale.contiguous()
        sp = scale.data_ptr()
    fn = lib.act_backward if g.dtype == torch.float32 else lib.act_backward_bf16
    fn(g.data_ptr(), g.stride(0), y.data_ptr(), y.stride(0), sp, rows, n,
                     ACTIVATION_KINDS[kind], torch.get_num_threads())


def act_forward(lib, a, bias, kind: str, ones: bool = True):
    """``[act(a + bias), 1]``: a new ``(R, n + 1)`` tensor (``(R, n)`` without ``ones``) from ``a: (R, n)``."""
    rows, n = a.shape
    if not (a.stride(1) == 1 and a.dtype in _DTYPES and bias.shape == (n,)):
        raise ValueError("act_forward: fp32 or bf16 row-major a (R, n) and bias (n,)")
    out = torch.empty(rows, n + int(ones), dtype=a.dtype)
    bias = bias.detach().float().contiguous()
    fn = lib.act_forward if a.dtype == torch.float32 else lib.act_forward_bf16
    fn(a.data_ptr(), a.stride(0), bias.data_ptr(), out.data_ptr(), out.stride(0), rows, n,
                    ACTIVATION_KINDS[kind], int(ones), torch.get_num_threads())
    return out
