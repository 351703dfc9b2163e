"""Readers on small synthetic files written in the real formats, plus corrupt-file errors."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from streamvae.data.readers import read_cifar, read_idx, read_omniglot_mat, read_svhn_mat
from streamvae.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_images_and_labels(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    got_i = read_idx(write_idx(tmp_path / f"imgs-idx3-ubyte{suffix}", images, gz))
    got_l = read_idx(write_idx(tmp_path / f"lbls-idx1-ubyte{suffix}", labels, gz))
    assert got_i.dtype == np.uint8 and got_i.shape == (7, 28, 28)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)


def test_read_idx_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "no-suffix"
    path.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(path), arr)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_truncated(tmp_path, gz):
    data = idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-100]
    path = tmp_path / ("short-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match=r"short-idx3-ubyte.*truncated.*3920 bytes.*3820"):
        read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8) * 7))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(path)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(DataError, match=r"bad-magic.*magic"):
        read_idx(path)


def test_read_idx_unsupported_type_and_missing(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4)
    with pytest.raises(DataError, match=r"floats.*0x08"):
        read_idx(path)
    with pytest.raises(DataError, match=r"nothere.*not found"):
        read_idx(tmp_path / "nothere")


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"xx")
    with pytest.raises(DataError, match=r"long.*too long"):
        read_idx(path)


# ---------------------------------------------------------------- CIFAR


def write_cifar_batch(path: Path, data: np.ndarray, labels: dict[bytes, list[int]]) -> None:
    obj = {b"batch_label": b"synthetic", b"data": data, b"filenames": [b"x.png"] * len(data)}
    obj.update(labels)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def test_read_cifar10(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = []
    for i in range(1, 6):
        data = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, 3)]
        write_cifar_batch(folder / f"data_batch_{i}", data, {b"labels": labels})
        batches.append((data, labels))
    test_data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    write_cifar_batch(folder / "test_batch", test_data, {b"labels": [9, 8, 7, 6]})

    images, labels = read_cifar(folder, "train")
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.shape == (15,)
    np.testing.assert_array_equal(images[3:6].reshape(3, -1), batches[1][0])
    np.testing.assert_array_equal(labels[12:], batches[4][1])
    # channel-major layout: the first 1024 bytes of a row are the red plane
    np.testing.assert_array_equal(images[0, 0].ravel(), batches[0][0][0, :1024])

    images, labels = read_cifar(folder, "test")
    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(labels, [9, 8, 7, 6])


def test_read_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for name in ("train", "test"):
        write_cifar_batch(folder / name, data, {b"fine_labels": [99, 3], b"coarse_labels": [19, 1]})
    images, fine = read_cifar(folder, "train")
    _, coarse = read_cifar(folder, "test", coarse=True)
    assert images.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(fine, [99, 3])
    np.testing.assert_array_equal(coarse, [19, 1])


def test_read_cifar_errors(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match="test_batch.*pickle"):
        read_cifar(folder, "test")
    with pytest.raises(DataError, match="data_batch_1.*not found"):
        read_cifar(folder, "train")
    write_cifar_batch(folder / "test_batch", np.zeros((2, 3072), np.uint8), {b"wrong": [1, 2]})
    with pytest.raises(DataError, match=r"test_batch.*missing key.*b'labels'"):
        read_cifar(folder, "test")
    with pytest.raises(DataError, match="not a CIFAR folder"):
        read_cifar(tmp_path / "empty", "train")
    with pytest.raises(DataError, match="valid splits"):
        read_cifar(folder, "val")


def test_read_cifar_refuses_code_in_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(DataError, match=r"test_batch.*not allowed"):
        read_cifar(folder, "test")


# ---------------------------------------------------------------- SVHN


def test_read_svhn_mat(tmp_path):
    rng = np.random.default_rng(2)
    n = 5
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)
    path = tmp_path / "train_32x32.mat"
    scipy.io.savemat(path, {"X": x, "y": y})
    images, labels = read_svhn_mat(path)
    assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 9])
    # image i, channel c, row r, column col == X[r, col, c, i]
    np.testing.assert_array_equal(images[3, 1], x[:, :, 1, 3])


def test_read_svhn_errors(tmp_path):
    path = tmp_path / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    with pytest.raises(DataError, match=r"test_32x32.mat.*missing variable.*'y'"):
        read_svhn_mat(path)
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"\x00" * 50 + b"not matlab")
    with pytest.raises(DataError, match="garbage.mat"):
        read_svhn_mat(garbage)
    with pytest.raises(DataError, match="absent.mat.*not found"):
        read_svhn_mat(tmp_path / "absent.mat")


# ---------------------------------------------------------------- OMNIGLOT


def asymmetric_image() -> np.ndarray:
    """An 'L' plus a dot: any flip or transpose changes it."""
    img = np.zeros((28, 28), dtype=np.float64)
    img[2:20, 3] = 1.0  # vertical bar on the left
    img[19, 3:15] = 1.0  # foot at the bottom going right
    img[5, 22] = 0.5  # dot top right
    return img


def write_chardata(path: Path, train: np.ndarray, train_alpha: list[int], test: np.ndarray, test_alpha: list[int]) -> None:
    def columns(imgs: np.ndarray) -> np.ndarray:  # Fortran-order 784-vectors as columns
        return np.stack([im.reshape(784, order="F") for im in imgs], axis=1)

    def onehot(idx: list[int]) -> np.ndarray:
        t = np.zeros((50, len(idx)))
        t[idx, np.arange(len(idx))] = 1
        return t

    scipy.io.savemat(path, {
        "data": columns(train), "target": onehot(train_alpha),
        "testdata": columns(test), "testtarget": onehot(test_alpha),
    })


def test_read_omniglot_orientation_and_labels(tmp_path):
    img = asymmetric_image()
    path = tmp_path / "chardata.mat"
    write_chardata(path, np.stack([img, img[::-1]]), [4, 49], np.stack([img.T]), [0])
    images, labels = read_omniglot_mat(path, "train")
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0, 0], np.rint(255 * img).astype(np.uint8))
    np.testing.assert_array_equal(images[1, 0], np.rint(255 * img[::-1]).astype(np.uint8))
    assert images[0, 0, 5, 22] == 128  # round(255 * 0.5), at row 5 column 22: upright
    np.testing.assert_array_equal(labels, [4, 49])
    assert labels.dtype == np.int64
    test_images, test_labels = read_omniglot_mat(path, "test")
    np.testing.assert_array_equal(test_images[0, 0], np.rint(255 * img.T).astype(np.uint8))
    np.testing.assert_array_equal(test_labels, [0])


def test_read_omniglot_errors(tmp_path):
    path = tmp_path / "chardata.mat"
    scipy.io.savemat(path, {"data": np.zeros((784, 2)), "target": np.zeros((50, 2))})
    read_omniglot_mat(path, "train")
    with pytest.raises(DataError, match=r"chardata.mat.*missing variable.*testdata"):
        read_omniglot_mat(path, "test")
    scipy.io.savemat(path, {"data": np.zeros((100, 2)), "target": np.zeros((50, 2))})
    with pytest.raises(DataError, match=r"chardata.mat.*shape"):
        read_omniglot_mat(path, "train")
    with pytest.raises(DataError, match="valid splits"):
        read_omniglot_mat(path, "validation")
