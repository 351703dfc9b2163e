"""Pure readers for the standard dataset file formats (numpy, scipy.io, pickle; no torchvision).

Every reader returns ``(images, labels)`` with ``images`` a C-contiguous ``uint8`` array of shape
``(N, C, H, W)`` and ``labels`` an ``int64`` array of shape ``(N,)``, except :func:`read_idx`, which
returns the raw array with the shape stored in the file header (the dataset layer pairs an images
file with a labels file and adds the channel axis).

A missing, truncated or corrupt file raises :class:`~streamvae.errors.DataError` naming the file and
saying what was expected; nothing is ever half-loaded.

Formats:

- IDX (MNIST, Fashion-MNIST, KMNIST): big-endian header ``0x00 0x00 <type> <ndim>``, then ``ndim``
  uint32 sizes, then the payload. Only type ``0x08`` (unsigned byte) is used by these datasets.
  Files may be gzipped (detected from the gzip magic bytes, whatever the name) or raw.
- CIFAR-10/100 "python version": pickled dicts with bytes keys (written by Python 2). They are read
  with a restricted unpickler that only accepts the few numpy globals such files contain, so a
  hostile pickle cannot run code.
- SVHN cropped digits: MATLAB ``.mat`` with ``X`` of shape (32, 32, 3, N) and ``y`` of shape (N, 1);
  label 10 stands for the digit 0.
- OMNIGLOT as used by Burda et al. (IWAE): ``chardata.mat`` with ``data`` (784, 24345) and
  ``testdata`` (784, 8070) in [0, 1], each 784-vector in Fortran (column-major) order, and one-hot
  alphabet labels ``target`` (50, 24345) / ``testtarget`` (50, 8070).
"""
from __future__ import annotations

import io
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from streamvae.errors import DataError

__all__ = ["read_idx", "read_cifar", "read_svhn_mat", "read_omniglot_mat"]

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_SPLITS = ("train", "test")
MAX_DECOMPRESSED = 4 << 30  # bytes: no dataset file inflates to more (MNIST's largest: 47 MB)


def _read_file(path: Path, what: str) -> bytes:
    """The raw bytes of ``path``; a missing or unreadable file becomes a DataError naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (expected {what})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc}); expected {what}") from None


def _gunzip(raw: bytes, limit: int, path: Path, what: str) -> bytes:
    """Decompress the gzip members of ``raw``, but never more than ``limit + 1`` bytes (a gzip bomb
    stops there; one byte past the limit tells the caller the data is too long)."""
    out = bytearray()
    data = raw
    try:
        while data[:2] == _GZIP_MAGIC and len(out) <= limit:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = d.decompress(data, limit + 1 - len(out))
            out += chunk
            while not d.eof and d.unconsumed_tail and len(out) <= limit:
                chunk = d.decompress(d.unconsumed_tail, limit + 1 - len(out))
                if not chunk:
                    break
                out += chunk
            if not d.eof:
                if len(out) > limit:
                    break  # stopped at the bound: the rest is never inflated
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            data = d.unused_data
        if data.strip(b"\x00") and len(out) <= limit and data[:2] != _GZIP_MAGIC:
            raise OSError("trailing garbage after the gzip data")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); expected gzip data holding {what}") from None
    return bytes(out[: limit + 1])


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) and return a uint8 array with the header's shape.

    Raises DataError if the file is missing, is not gzip/IDX, has an element type other than
    unsigned byte, or if its payload is not exactly as long as the header says.
    """
    path = Path(path)
    what = "an IDX file (header 0x00 0x00 0x08 <ndim>, big-endian uint32 sizes, uint8 payload)"
    raw = _read_file(path, what)
    gzipped = raw[:2] == _GZIP_MAGIC
    data = _gunzip(raw, 4 + 4 * 255, path, what) if gzipped else raw  # the header first: it bounds the rest
    if len(data) < 4:
        raise DataError(f"{path}: file too short ({len(data)} bytes) for an IDX header; expected {what}")
    zero0, zero1, dtype_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or dtype_code not in _IDX_TYPES:
        raise DataError(
            f"{path}: bad magic number 0x{data[:4].hex()}; expected {what} "
            "(e.g. 0x00000803 for images, 0x00000801 for labels)"
        )
    if dtype_code != 0x08:
        raise DataError(
            f"{path}: IDX element type 0x{dtype_code:02x} ({_IDX_TYPES[dtype_code]}) is not supported; "
            "expected 0x08 (unsigned byte) as in MNIST, Fashion-MNIST and KMNIST"
        )
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions; expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_len} header bytes, "
            f"file has {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = math.prod(dims)  # exact (Python ints): a header cannot overflow it
    if 0 in dims:
        raise DataError(f"{path}: IDX header shape {tuple(dims)} holds no data; expected {what} with at least one item")
    if header_len + expected > MAX_DECOMPRESSED:
        raise DataError(f"{path}: IDX header shape {tuple(dims)} needs {expected} bytes, more than any dataset "
                        f"file ({MAX_DECOMPRESSED} bytes); the header is corrupt")
    if gzipped:  # inflate what the header implies and one byte more, never a gzip bomb's all
        data = _gunzip(raw, header_len + expected, path, what)
    actual = len(data) - header_len
    if actual != expected:
        kind = "truncated" if actual < expected else "too long"
        has = f"more than {expected}" if actual > expected and gzipped else str(actual)
        raise DataError(
            f"{path}: {kind} IDX payload: header shape {tuple(dims)} needs {expected} bytes, "
            f"file has {has} (after decompression)"
        )
    arr = np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_len)
    return arr.reshape(dims).copy()


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals a CIFAR batch file legitimately contains."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _load_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    what = (
        f"a CIFAR python pickle (a dict with keys b'data' (N, 3072) uint8 and {label_key!r})"
    )
    raw = _read_file(path, what)
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a corrupt or foreign file
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); expected {what}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: pickle holds a {type(obj).__name__}, expected {what}")
    missing = [k for k in (b"data", label_key) if k not in obj]
    if missing:
        raise DataError(
            f"{path}: missing key(s) {missing}; found {sorted(map(repr, obj))[:10]}; expected {what}"
        )
    try:
        data = np.asarray(obj[b"data"])
        labels = np.asarray(obj[label_key])
    except (ValueError, TypeError) as exc:  # ragged or foreign contents
        raise DataError(f"{path}: b'data' or {label_key!r} is not an array ({exc}); expected {what}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] == 0:
        raise DataError(
            f"{path}: b'data' has shape {data.shape} dtype {data.dtype}; expected (N, 3072) uint8 with N > 0"
        )
    if (labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer)
            or labels.min() < 0 or labels.max() >= 1000):
        raise DataError(
            f"{path}: {label_key!r} has shape {labels.shape} dtype {labels.dtype}; "
            f"expected {data.shape[0]} integer labels in 0..999"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar(folder: str | Path, split: str, coarse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``).

    ``folder`` is the extracted folder itself. CIFAR-10 is recognised by ``data_batch_1`` /
    ``test_batch`` (train = ``data_batch_1..5``, test = ``test_batch``), CIFAR-100 by ``train`` /
    ``test``. ``coarse`` picks CIFAR-100's 20 superclasses instead of the 100 fine labels (it is
    ignored for CIFAR-10). Returns images uint8 (N, 3, 32, 32) and labels int64 (N,).
    """
    folder = Path(folder)
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r} for {folder}; valid splits: {', '.join(_SPLITS)}")
    is_c10 = (folder / "data_batch_1").exists() or (folder / "test_batch").exists()
    is_c100 = (folder / "train").exists() or (folder / "test").exists()
    if is_c10:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        label_key = b"labels"
    elif is_c100:
        names = ["train"] if split == "train" else ["test"]
        label_key = b"coarse_labels" if coarse else b"fine_labels"
    else:
        raise DataError(
            f"{folder}: not a CIFAR folder; expected 'cifar-10-batches-py' (data_batch_1..5, "
            "test_batch) or 'cifar-100-python' (train, test)"
        )
    parts = [_load_cifar_batch(folder / n, label_key) for n in names]
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    labels = np.concatenate([p[1] for p in parts])
    return images, labels


def _loadmat(path: Path, what: str) -> dict[str, Any]:
    import scipy.io  # local import: scipy is only needed for the .mat datasets

    if not path.exists():
        raise DataError(f"{path}: file not found (expected {what})")
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 (HDF5) files
        raise DataError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; expected {what} saved as MATLAB v5"
        ) from None
    except Exception as exc:  # scipy raises ValueError/MatReadError/TypeError on garbage
        raise DataError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc}); expected {what}") from None


def _require_keys(path: Path, mat: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: missing variable(s) {missing} (found {found}); expected {what}")


def _real_array(path: Path, mat: dict[str, Any], key: str, what: str) -> np.ndarray:
    """``mat[key]`` as a numeric array of real numbers (bool, integer or float), else a DataError:
    strings, cells, structs and complex numbers never reach the arithmetic."""
    value = np.asarray(mat[key])
    if value.dtype == np.bool_ or np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating):
        return value
    raise DataError(f"{path}: {key} holds {value.dtype} values, not real numbers; expected {what}")


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN ``train_32x32.mat`` / ``test_32x32.mat`` (label 10 is mapped to digit 0).

    Returns images uint8 (N, 3, 32, 32) and labels int64 (N,) in 0..9.
    """
    path = Path(path)
    what = "an SVHN .mat file with X (32, 32, 3, N) uint8 and y (N, 1) labels 1..10"
    mat = _loadmat(path, what)
    _require_keys(path, mat, ("X", "y"), what)
    x, y = _real_array(path, mat, "X", what), _real_array(path, mat, "y", what)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: X has shape {x.shape}; expected {what}")
    n = x.shape[3]
    if n == 0:
        raise DataError(f"{path}: X holds no images; expected {what}")
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise DataError(f"{path}: y has {y.shape[0]} labels but X has {n} images; expected {what}")
    if x.dtype != np.uint8:
        if x.size and (x.min() < 0 or x.max() > 255 or not np.all(np.mod(x, 1) == 0)):
            raise DataError(f"{path}: X has dtype {x.dtype} with values outside 0..255; expected {what}")
        x = x.astype(np.uint8)
    if y.size and (np.any(np.mod(y, 1) != 0) or y.min() < 0 or y.max() > 10):
        raise DataError(f"{path}: y has values outside 0..10; expected {what}")
    labels = y.astype(np.int64)
    labels[labels == 10] = 0
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    return images, labels


def read_omniglot_mat(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read Burda et al.'s OMNIGLOT ``chardata.mat`` (28x28, as used by IWAE and OCM).

    Returns upright images uint8 (N, 1, 28, 28) (``round(255 * v)``) and labels int64 (N,) holding
    the alphabet index (argmax of the one-hot ``target`` / ``testtarget``; 50 alphabets).
    """
    path = Path(path)
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r} for {path}; valid splits: {', '.join(_SPLITS)}")
    what = (
        "OMNIGLOT chardata.mat with data (784, N) / testdata (784, N) in [0, 1] and one-hot "
        "target (50, N) / testtarget (50, N)"
    )
    data_key, target_key = ("data", "target") if split == "train" else ("testdata", "testtarget")
    mat = _loadmat(path, what)
    _require_keys(path, mat, (data_key, target_key), what)
    data = _real_array(path, mat, data_key, what).astype(np.float64)
    target = _real_array(path, mat, target_key, what)
    if data.ndim != 2 or data.shape[0] != 784:
        raise DataError(f"{path}: {data_key} has shape {data.shape}; expected {what}")
    n = data.shape[1]
    if n == 0:
        raise DataError(f"{path}: {data_key} holds no images; expected {what}")
    if target.ndim != 2 or target.shape[1] != n:
        raise DataError(
            f"{path}: {target_key} has shape {target.shape}; expected (n_alphabets, {n}) one-hot"
        )
    if data.size and (not np.all(np.isfinite(data)) or data.min() < 0 or data.max() > 1):
        raise DataError(f"{path}: {data_key} has values outside [0, 1]; expected {what}")
    # Each column is a 28x28 image flattened in Fortran order: transpose it back to upright.
    images = np.rint(255.0 * data.T).astype(np.uint8).reshape(-1, 28, 28, order="F")
    images = np.ascontiguousarray(images[:, None, :, :])
    labels = np.argmax(target, axis=0).astype(np.int64)
    return images, labels
