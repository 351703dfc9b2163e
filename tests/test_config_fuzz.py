"""Fuzzing (hypothesis, bounded): the dataset readers and the --set parser return a valid result or raise
their one-line error (DataError / ConfigError), never anything else, whatever the bytes or the text."""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io

pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from streamvae.config import RunConfig, parse_override  # noqa: E402
from streamvae.data.readers import read_cifar, read_idx, read_omniglot_mat, read_svhn_mat  # noqa: E402
from streamvae.errors import ConfigError, DataError  # noqa: E402
from streamvae.registry import load_config  # noqa: E402

EXAMPLES = 120  # per reader (RELIABILITY.md counts them); the whole file runs in seconds
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None, extra: bytes) -> bytes:
    """Flip bytes at positions (mod length), cut the tail, append bytes: a damaged copy of a valid file."""
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    if cut is not None and b:
        b = b[: cut % (len(b) + 1)]
    return bytes(b) + extra


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4)
CUTS = st.one_of(st.none(), st.integers(0, 10**6))
EXTRA = st.binary(max_size=16)


def one_line(err: Exception) -> None:
    assert "\n" not in str(err) and str(err)


# -- IDX (MNIST, Fashion-MNIST, KMNIST) ---------------------------------------------------------------

def idx_bytes(shape: tuple[int, ...], type_code: int = 0x08) -> bytes:
    payload = bytes(int(np.prod(shape))) if shape else b""
    return struct.pack(">BBBB", 0, 0, type_code, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + payload


@FUZZ
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple), type_code=st.sampled_from([8, 8, 8, 9, 0x0D, 0x42]),
       gz=st.booleans(), damage_after_gzip=st.booleans(), edits=EDITS, cut=CUTS, extra=EXTRA, noise=st.binary(max_size=64),
       pure_noise=st.booleans())
def test_read_idx_returns_the_header_shape_or_a_data_error(shape, type_code, gz, damage_after_gzip, edits, cut, extra,
                                                           noise, pure_noise):
    data = noise if pure_noise else idx_bytes(shape, type_code)
    if not damage_after_gzip:
        data = mutate(data, edits, cut, extra)
    if gz:
        data = gzip.compress(data)
    if damage_after_gzip:
        data = mutate(data, edits, cut, extra)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz-idx3-ubyte"
        path.write_bytes(data)
        try:
            arr = read_idx(path)
        except DataError as e:
            one_line(e)
            return
    assert arr.dtype == np.uint8 and arr.size > 0
    head = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    assert arr.shape == struct.unpack(f">{head[3]}I", head[4:4 + 4 * head[3]])


def test_a_gzip_bomb_is_never_inflated_beyond_what_the_header_implies(tmp_path):
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(idx_bytes((1, 28, 28))[:16])]  # the header of one 28x28 image ...
    zeros = bytes(1 << 20)
    parts += [comp.compress(zeros) for _ in range(512)]  # ... followed by 512 MiB of zeros
    parts.append(comp.flush())
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(b"".join(parts))
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="too long"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, f"{peak / 2**20:.0f} MiB allocated for a 784-byte image"


def test_an_idx_header_whose_dimensions_overflow_is_a_data_error(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(struct.pack(">BBBB", 0, 0, 8, 4) + struct.pack(">4I", 2**32 - 1, 2**32 - 1, 2**31, 2**31) + b"x")
    with pytest.raises(DataError, match="header"):
        read_idx(path)
    path.write_bytes(idx_bytes((0, 28, 28)))  # a file of zero images
    with pytest.raises(DataError, match="no data"):
        read_idx(path)


# -- CIFAR (restricted unpickler) ---------------------------------------------------------------------

ARRAYS = st.one_of(
    st.tuples(st.integers(0, 3), st.sampled_from([3072, 3071, 10]), st.sampled_from(["uint8", "float32", "int64", "bool"]))
    .map(lambda t: np.zeros(t[:2], dtype=t[2])),
    st.lists(st.integers(-5, 300), max_size=5).map(np.array),
    st.just(None), st.text(max_size=5), st.integers(), st.lists(st.lists(st.integers(0, 3), max_size=3), max_size=3),
)


@FUZZ
@given(data=ARRAYS, labels=ARRAYS, keys=st.sets(st.sampled_from([b"data", b"labels", b"other", "data"]), max_size=3),
       protocol=st.integers(2, 5), edits=EDITS, cut=CUTS, extra=EXTRA, damaged=st.booleans(), top=st.sampled_from(["dict", "list"]))
def test_read_cifar_returns_valid_arrays_or_a_data_error(data, labels, keys, protocol, edits, cut, extra, damaged, top):
    obj = {k: (data if k in (b"data", "data") else labels) for k in keys}
    blob = pickle.dumps(obj if top == "dict" else list(obj), protocol=protocol)
    if damaged:
        blob = mutate(blob, edits, cut, extra)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "test_batch").write_bytes(blob)
        try:
            images, y = read_cifar(d, "test")
        except DataError as e:
            one_line(e)
            return
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32) and len(images) == len(y) > 0
    assert y.dtype == np.int64


# -- SVHN and OMNIGLOT (.mat through scipy) -----------------------------------------------------------

MAT_VALUES = st.one_of(
    st.tuples(st.lists(st.integers(0, 4), min_size=1, max_size=4),
              st.sampled_from(["uint8", "float64", "int16", "bool", "complex64"]), st.integers(-2, 300))
    .map(lambda t: np.full(t[0], t[2]).astype(t[1])),
    st.text(max_size=4), st.just(np.zeros((32, 32, 3, 2), dtype=np.uint8)), st.just(np.ones((784, 3)) * 0.5),
    st.just(np.eye(50, 3)), st.just(np.array([[1], [10]])),
)


def _mat(values: dict) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, values)
    return buf.getvalue()


@FUZZ
@given(x=MAT_VALUES, y=MAT_VALUES, names=st.sets(st.sampled_from(["X", "y", "Z"]), max_size=3), edits=EDITS, cut=CUTS,
       extra=EXTRA, damaged=st.booleans(), compressed=st.booleans())
def test_read_svhn_returns_valid_arrays_or_a_data_error(x, y, names, edits, cut, extra, damaged, compressed):
    values = {n: (x if n == "X" else y) for n in names} or {"Z": 1}
    buf = io.BytesIO()
    scipy.io.savemat(buf, values, do_compression=compressed)
    blob = mutate(buf.getvalue(), edits, cut, extra) if damaged else buf.getvalue()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "test_32x32.mat"
        path.write_bytes(blob)
        try:
            images, labels = read_svhn_mat(path)
        except DataError as e:
            one_line(e)
            return
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32) and len(images) == len(labels) > 0
    assert labels.min() >= 0 and labels.max() <= 9


@FUZZ
@given(data=MAT_VALUES, target=MAT_VALUES, split=st.sampled_from(["train", "test"]),
       names=st.sets(st.sampled_from(["data", "target", "testdata", "testtarget"]), max_size=4), edits=EDITS, cut=CUTS,
       extra=EXTRA, damaged=st.booleans())
def test_read_omniglot_returns_valid_arrays_or_a_data_error(data, target, split, names, edits, cut, extra, damaged):
    values = {n: (data if "data" in n else target) for n in names} or {"other": 1}
    blob = _mat(values)
    if damaged:
        blob = mutate(blob, edits, cut, extra)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "chardata.mat"
        path.write_bytes(blob)
        try:
            images, labels = read_omniglot_mat(path, split)
        except DataError as e:
            one_line(e)
            return
    assert images.dtype == np.uint8 and images.shape[1:] == (1, 28, 28) and len(images) == len(labels) > 0


# -- the --set parser -----------------------------------------------------------------------------------

KEYS = st.sampled_from(["seed", "learner.lr", "learner.name", "stream.datasets", "stream.batch_size", "memory.capacity",
                        "eval.grid", "budget", "name", "model.encoder_hidden", "learner", "stream", "nope.x", "", "a.b.c"])
TOKENS = st.lists(st.sampled_from(["[", "]", "{", "}", "(", ")", ",", ":", " ", "1", "9" * 30, "-", "e999", ".", "nan",
                                   "inf", "'", '"', "true", "null", "&a", "*a", "!!python/object:os.system", "fashion",
                                   "\\", "\x00", "=", "#", "0x10", "1_000"]), max_size=40).map("".join)


@settings(max_examples=3 * EXAMPLES, deadline=None, derandomize=True)
@given(key=KEYS, value=st.one_of(TOKENS, st.text(max_size=60)))
def test_the_set_parser_gives_a_config_or_a_config_error(key, value):
    try:
        cfg = load_config(None, [f"{key}={value}"])
    except ConfigError as e:
        one_line(e)
        assert len(str(e)) < 2000
        return
    assert isinstance(cfg, RunConfig)
    parse_override(f"{key}={value}")
