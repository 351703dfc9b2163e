"""Dataset registry, source order (data root, Debian, cache), error messages and the array cache."""
from __future__ import annotations

import gzip
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from streamvae.data import datasets
from streamvae.data.datasets import DATASETS, dataset_table, load_dataset, locate
from streamvae.errors import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    data = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data += arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_mnist_like(folder: Path, n_train: int = 6, n_test: int = 3, fill: int = 0, gz: bool = True,
                     splits: tuple[str, ...] = ("train", "test")) -> None:
    """Synthetic IDX files; every pixel equals ``fill`` so tests can tell sources apart."""
    for split, n in (("train", n_train), ("test", n_test)):
        if split not in splits:
            continue
        prefix = "train" if split == "train" else "t10k"
        write_idx(folder / f"{prefix}-images-idx3-ubyte", np.full((n, 28, 28), fill, np.uint8), gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No data root, no system folders, a private cache; the array cache is cleared."""
    monkeypatch.delenv("STREAMVAE_DATA", raising=False)
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    datasets.clear_cache()
    yield
    datasets.clear_cache()


def test_registry():
    assert list(DATASETS) == ["mnist", "fashion", "kmnist", "cifar10", "cifar100", "svhn", "omniglot"]
    folders = {n: s.folder for n, s in DATASETS.items()}
    assert folders == {"mnist": "mnist", "fashion": "fashion-mnist", "kmnist": "kmnist", "cifar10": "cifar10",
                       "cifar100": "cifar100", "svhn": "svhn", "omniglot": "omniglot"}
    for spec in DATASETS.values():
        assert spec.mirrors and spec.remote
        for r in spec.remote:
            assert r.md5 is None or re.fullmatch(r"[0-9a-f]{32}", r.md5)
            assert r.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", r.sha256)
    assert not DATASETS["omniglot"].verified
    assert all(DATASETS[n].verified for n in DATASETS if n != "omniglot")
    assert DATASETS["cifar100"].num_classes == 100 and DATASETS["svhn"].image_shape == (3, 32, 32)


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_data_root_argument(tmp_path, gz):
    write_mnist_like(tmp_path / "root" / "mnist", fill=5, gz=gz)
    images, labels = load_dataset("mnist", "train", data_root=tmp_path / "root")
    assert images.shape == (6, 1, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert (images == 5).all()
    test_images, _ = load_dataset("mnist", "test", data_root=str(tmp_path / "root"))
    assert test_images.shape == (3, 1, 28, 28)


def test_data_root_argument_overrides_env(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "env" / "kmnist", fill=1)
    write_mnist_like(tmp_path / "arg" / "kmnist", fill=2)
    monkeypatch.setenv("STREAMVAE_DATA", str(tmp_path / "env"))
    assert locate("kmnist") == (tmp_path / "env" / "kmnist", "data root")
    assert (load_dataset("kmnist", "test")[0] == 1).all()
    assert (load_dataset("kmnist", "test", data_root=tmp_path / "arg")[0] == 2).all()


def test_source_order(tmp_path, monkeypatch):
    root, system, cache = tmp_path / "root", tmp_path / "debian", tmp_path / "cache"
    write_mnist_like(root / "fashion-mnist", fill=1)
    write_mnist_like(system, fill=2)  # system folders hold the files directly
    write_mnist_like(cache / "fashion-mnist", fill=3)
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion": (str(tmp_path / "nope"), str(system))})
    monkeypatch.setenv("STREAMVAE_DATA", str(root))

    assert locate("fashion") == (root / "fashion-mnist", "data root")
    assert (load_dataset("fashion", "train")[0] == 1).all()
    monkeypatch.delenv("STREAMVAE_DATA")
    assert locate("fashion") == (system, "debian")
    assert (load_dataset("fashion", "train")[0] == 2).all()
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    assert locate("fashion") == (cache / "fashion-mnist", "cache")
    assert (load_dataset("fashion", "train")[0] == 3).all()
    # the system folder is only used for the dataset it belongs to
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion": (str(system),)})
    assert locate("mnist") == (None, "missing")


def test_incomplete_folder_is_skipped(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_mnist_like(root / "mnist", splits=("train",), fill=1)
    write_mnist_like(tmp_path / "cache" / "mnist", fill=3)
    monkeypatch.setenv("STREAMVAE_DATA", str(root))
    assert locate("mnist", split="train") == (root / "mnist", "data root")
    assert locate("mnist", split="test") == (tmp_path / "cache" / "mnist", "cache")
    assert locate("mnist") == (tmp_path / "cache" / "mnist", "cache")  # both splits needed


def test_cache_dir_reads_env_each_call(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path / "a"))
    assert datasets.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("STREAMVAE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "streamvae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "streamvae"


def test_not_found_message_lists_places(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion": (str(tmp_path / "debian"),)})
    with pytest.raises(DataError) as info:
        load_dataset("fashion", "test", data_root=root)
    msg = str(info.value)
    for place in (root / "fashion-mnist", tmp_path / "debian", tmp_path / "cache" / "fashion-mnist"):
        assert str(place) in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "dataset-fashion-mnist" in msg and "streamvae data fetch fashion" in msg

    with pytest.raises(DataError) as info:
        load_dataset("svhn", "train")
    msg = str(info.value)
    assert "--data-root" in msg and "STREAMVAE_DATA" in msg and "train_32x32.mat" in msg
    assert "DIR/svhn/" in msg and str(tmp_path / "cache" / "svhn") in msg


def test_not_found_hints_at_missing_subfolder(tmp_path):
    write_mnist_like(tmp_path / "flat")
    with pytest.raises(DataError, match="must be in the subfolder"):
        load_dataset("mnist", "train", data_root=tmp_path / "flat")


def test_unknown_name_and_split():
    with pytest.raises(DataError, match="valid datasets: mnist, fashion, kmnist, cifar10, cifar100, svhn, omniglot"):
        load_dataset("imagenet", "train")
    with pytest.raises(DataError, match="valid splits: train, test"):
        load_dataset("mnist", "valid")
    with pytest.raises(DataError, match="valid datasets"):
        locate("nope")


def test_arrays_cached_and_read_only(tmp_path):
    write_mnist_like(tmp_path / "mnist")
    a = load_dataset("mnist", "train", data_root=tmp_path)
    b = load_dataset("mnist", "train", data_root=tmp_path)
    assert a[0] is b[0] and a[1] is b[1]
    assert not a[0].flags.writeable and not a[1].flags.writeable
    with pytest.raises(ValueError):
        a[0][0, 0, 0, 0] = 1
    datasets.clear_cache()
    assert load_dataset("mnist", "train", data_root=tmp_path)[0] is not a[0]


def test_corrupt_files_are_reported(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist_like(folder)
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(4))  # 4 labels for 6 images
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*expected \\(6,\\)"):
        load_dataset("mnist", "train", data_root=tmp_path)
    write_idx(folder / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 10]))
    with pytest.raises(DataError, match="labels span 0..10; expected 0..9"):
        load_dataset("mnist", "train", data_root=tmp_path)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((3, 32, 32)))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*expected \\(N, 28, 28\\)"):
        load_dataset("mnist", "test", data_root=tmp_path)


def _cifar_pickle(path: Path, n: int, labels: dict[bytes, list[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {b"data": np.zeros((n, 3072), np.uint8), **labels}
    path.write_bytes(pickle.dumps(obj, protocol=2))


def test_other_formats_from_data_root(tmp_path):
    root = tmp_path
    for i in range(1, 6):
        _cifar_pickle(root / "cifar10/cifar-10-batches-py" / f"data_batch_{i}", 2, {b"labels": [0, 9]})
    _cifar_pickle(root / "cifar10/cifar-10-batches-py/test_batch", 3, {b"labels": [1, 2, 3]})
    _cifar_pickle(root / "cifar100/cifar-100-python/test", 2, {b"fine_labels": [99, 0], b"coarse_labels": [1, 1]})
    (root / "svhn").mkdir()
    scipy.io.savemat(root / "svhn/test_32x32.mat",
                     {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[10], [3]])})
    (root / "omniglot").mkdir()
    target = np.zeros((50, 2))
    target[[7, 49], [0, 1]] = 1
    scipy.io.savemat(root / "omniglot/chardata.mat", {"data": np.zeros((784, 2)), "target": target,
                                                      "testdata": np.zeros((784, 1)), "testtarget": target[:, :1]})

    images, labels = load_dataset("cifar10", "train", data_root=root)
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == [0, 9] * 5
    assert load_dataset("cifar10", "test", data_root=root)[1].tolist() == [1, 2, 3]
    assert load_dataset("cifar100", "test", data_root=root)[1].tolist() == [99, 0]
    images, labels = load_dataset("svhn", "test", data_root=root)
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [0, 3]
    images, labels = load_dataset("omniglot", "train", data_root=root)
    assert images.shape == (2, 1, 28, 28) and labels.tolist() == [7, 49]
    assert load_dataset("omniglot", "test", data_root=root)[0].shape == (1, 1, 28, 28)

    table = {row["name"]: row for row in dataset_table(data_root=root)}
    assert set(table) == set(DATASETS)
    assert table["omniglot"] == {"name": "omniglot", "available": True, "source": "data root",
                                 "path": str(root / "omniglot")}
    assert table["cifar10"]["available"] is True
    assert table["cifar100"]["available"] is False  # train split missing
    assert table["svhn"]["available"] is False
    assert table["mnist"] == {"name": "mnist", "available": False, "source": "missing", "path": None}


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_fashion(monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion": (str(DEBIAN_FASHION),)})
    assert locate("fashion") == (DEBIAN_FASHION, "debian")
    train_x, train_y = load_dataset("fashion", "train")
    test_x, test_y = load_dataset("fashion", "test")
    assert train_x.shape == (60000, 1, 28, 28) and test_x.shape == (10000, 1, 28, 28)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64
    assert sorted(np.unique(train_y).tolist()) == list(range(10)) == sorted(np.unique(test_y).tolist())
    assert np.bincount(train_y).tolist() == [6000] * 10 and np.bincount(test_y).tolist() == [1000] * 10
    assert train_x.max() == 255
