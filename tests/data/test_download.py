"""Verified atomic downloads against a local HTTP server on 127.0.0.1 serving synthetic files."""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from streamvae.data import datasets
from streamvae.data.datasets import RemoteFile, load_dataset
from streamvae.data.download import download, extract_tar, file_digest
from streamvae.errors import DataError


def idx_gz(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.tobytes())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture
def server(tmp_path):
    """(base_url, served_dir) of a ThreadingHTTPServer on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STREAMVAE_DATA", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    datasets.clear_cache()
    yield
    datasets.clear_cache()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_ok_sha256_and_md5(server, tmp_path):
    base, served = server
    blob = idx_gz(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    (served / "x.gz").write_bytes(blob)
    dest = tmp_path / "out" / "x.gz"
    got = download(base + "x.gz", dest, sha256=hashlib.sha256(blob).hexdigest(),
                   md5=hashlib.md5(blob).hexdigest())
    assert got == dest and dest.read_bytes() == blob
    assert _leftovers(dest.parent) == ["x.gz"]
    assert file_digest(dest) == hashlib.sha256(blob).hexdigest()


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path):
    base, served = server
    (served / "x.gz").write_bytes(b"payload")
    dest = tmp_path / "out" / "x.gz"
    wrong = "0" * 64
    with pytest.raises(DataError) as info:
        download(base + "x.gz", dest, sha256=wrong)
    msg = str(info.value)
    assert base + "x.gz" in msg and wrong in msg and hashlib.sha256(b"payload").hexdigest() in msg
    assert _leftovers(dest.parent) == []


def test_download_mismatch_keeps_existing_file(server, tmp_path):
    base, served = server
    (served / "x.gz").write_bytes(b"new")
    dest = tmp_path / "x.gz"
    dest.write_bytes(b"old")
    with pytest.raises(DataError, match="checksum mismatch"):
        download(base + "x.gz", dest, md5="f" * 32)
    assert dest.read_bytes() == b"old"
    assert _leftovers(tmp_path) == sorted(["served", "x.gz"])


def test_download_offline(closed_port_url, tmp_path):
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(DataError) as info:
        download(closed_port_url + "file.gz", dest, sha256="0" * 64, timeout=5)
    msg = str(info.value)
    assert "offline" in msg and str(dest) in msg
    assert _leftovers(dest.parent) == []


def test_download_http_404(server, tmp_path):
    base, _ = server
    with pytest.raises(DataError, match="HTTP 404"):
        download(base + "missing.gz", tmp_path / "m.gz", sha256="0" * 64)
    assert not (tmp_path / "m.gz").exists()


def test_download_without_checksum_refused_unless_allowed(server, tmp_path):
    base, served = server
    (served / "f").write_bytes(b"abc")
    with pytest.raises(DataError, match="allow_unverified"):
        download(base + "f", tmp_path / "f")
    assert not (tmp_path / "f").exists()
    download(base + "f", tmp_path / "f", allow_unverified=True)
    assert (tmp_path / "f").read_bytes() == b"abc"


def test_extract_tar_refuses_unsafe_paths(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DataError, match="unsafe path"):
        extract_tar(archive, tmp_path / "dest")
    assert not (tmp_path / "escape.txt").exists()
    assert _leftovers(tmp_path / "dest") == []


# ---------------------------------------------------------------- load_dataset(download=True)


def _serve_mnist(served: Path) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 12, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 4, dtype=np.uint8),
    }
    blobs = {}
    for stem, arr in arrays.items():
        blobs[stem + ".gz"] = idx_gz(arr)
        (served / f"{stem}.gz").write_bytes(blobs[stem + ".gz"])
    return blobs, arrays


def test_load_dataset_download_end_to_end(server, closed_port_url, tmp_path, monkeypatch):
    base, served = server
    blobs, arrays = _serve_mnist(served)
    spec = datasets.DATASETS["mnist"]
    remote = tuple(
        dataclasses.replace(r, md5=None, sha256=hashlib.sha256(blobs[r.name]).hexdigest())
        for r in spec.remote
    )
    # first mirror is dead: the loader must fall back to the second one
    monkeypatch.setitem(datasets.DATASETS, "mnist",
                        dataclasses.replace(spec, mirrors=(closed_port_url, base), remote=remote))
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist", "train")  # download=False never touches the network

    images, labels = load_dataset("mnist", "train", download=True)
    assert images.shape == (12, 1, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(labels, arrays["train-labels-idx1-ubyte"].astype(np.int64))
    cache = tmp_path / "cache" / "mnist"
    assert _leftovers(cache) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert datasets.locate("mnist", split="train") == (cache, "cache")

    test_images, _ = load_dataset("mnist", "test", download=True)
    assert test_images.shape == (4, 1, 28, 28)
    assert datasets.locate("mnist") == (cache, "cache")


def test_load_dataset_download_bad_checksum(server, tmp_path, monkeypatch):
    base, served = server
    _serve_mnist(served)
    spec = datasets.DATASETS["mnist"]
    # the real MNIST md5s do not match the synthetic files
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(spec, mirrors=(base,)))
    with pytest.raises(DataError, match="checksum mismatch.*f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load_dataset("mnist", "train", download=True)
    assert _leftovers(tmp_path / "cache" / "mnist") == []


def test_load_dataset_download_offline_message(closed_port_url, tmp_path, monkeypatch):
    spec = datasets.DATASETS["kmnist"]
    monkeypatch.setitem(datasets.DATASETS, "kmnist", dataclasses.replace(spec, mirrors=(closed_port_url,)))
    with pytest.raises(DataError) as info:
        load_dataset("kmnist", "test", download=True)
    msg = str(info.value)
    assert "offline" in msg and "t10k-images-idx3-ubyte.gz" in msg
    assert "--data-root" in msg and str(tmp_path / "cache" / "kmnist") in msg


def test_load_dataset_unverified_refused(server, monkeypatch):
    base, _ = server
    spec = datasets.DATASETS["omniglot"]
    assert not spec.verified
    monkeypatch.setitem(datasets.DATASETS, "omniglot", dataclasses.replace(spec, mirrors=(base,)))
    with pytest.raises(DataError, match="allow_unverified=True"):
        load_dataset("omniglot", "train", download=True)


def test_load_dataset_download_cifar_archive(server, tmp_path, monkeypatch):
    base, served = server
    rng = np.random.default_rng(3)
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            obj = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    spec = datasets.DATASETS["cifar10"]
    remote = (RemoteFile(archive.name, sha256=file_digest(archive), archive=True),)
    monkeypatch.setitem(datasets.DATASETS, "cifar10",
                        dataclasses.replace(spec, mirrors=(base,), remote=remote))
    images, labels = load_dataset("cifar10", "train", download=True)
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == [1, 2] * 5
    cache = tmp_path / "cache" / "cifar10"
    assert _leftovers(cache) == ["cifar-10-batches-py"]  # archive removed after extraction
    assert datasets.locate("cifar10") == (cache, "cache")


def test_data_fetch_places_a_dataset_under_the_data_root(server, tmp_path, monkeypatch, capsys):
    from streamvae.cli import main

    base, served = server
    blobs, arrays = _serve_mnist(served)
    spec = datasets.DATASETS["mnist"]
    remote = tuple(dataclasses.replace(r, md5=None, sha256=hashlib.sha256(blobs[r.name]).hexdigest())
                   for r in spec.remote)
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(spec, mirrors=(base,), remote=remote))
    root = tmp_path / "data"
    assert main(["data", "fetch", "mnist", "--data-root", str(root)]) == 0
    assert f"mnist: downloaded in {root / 'mnist'}" in capsys.readouterr().out
    assert datasets.locate("mnist", root) == (root / "mnist", "data root")
    assert main(["data", "fetch", "mnist", "--data-root", str(root)]) == 0  # already there: nothing fetched
    assert "mnist: found in" in capsys.readouterr().out
    assert main(["data", "fetch"]) == 2 and main(["data", "fetch", "nope"]) == 2


def _mnist_served_with_digests(server, monkeypatch):
    base, served = server
    blobs, _ = _serve_mnist(served)
    spec = datasets.DATASETS["mnist"]
    remote = tuple(dataclasses.replace(r, md5=None, sha256=hashlib.sha256(blobs[r.name]).hexdigest())
                   for r in spec.remote)
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(spec, mirrors=(base,), remote=remote))
    return blobs


def test_fetch_verifies_its_cache_and_repairs_a_truncated_file(server, tmp_path, monkeypatch, capsys):
    """Was: a truncated cached file was reported "found" and never checked again, though its digest is known;
    a stale .part of a killed download stayed."""
    from streamvae.cli import main

    blobs = _mnist_served_with_digests(server, monkeypatch)
    assert main(["data", "fetch", "mnist"]) == 0
    cache = tmp_path / "cache" / "mnist"
    damaged = cache / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(blobs[damaged.name][: len(blobs[damaged.name]) // 2])  # a kill during an old copy
    stale = cache / ".t10k-images-idx3-ubyte.gz.x81k2.part"
    stale.write_bytes(b"half a download")
    os.utime(stale, (1, 1))  # untouched for decades: no download is writing it
    fresh = cache / ".t10k-labels-idx1-ubyte.gz.q0.part"
    fresh.write_bytes(b"a download in progress")
    capsys.readouterr()
    assert main(["data", "fetch", "mnist"]) == 0
    assert f"mnist: repaired in {cache}" in capsys.readouterr().out
    assert damaged.read_bytes() == blobs[damaged.name]
    assert not stale.exists() and fresh.exists()  # only the stale one
    assert main(["data", "fetch", "mnist"]) == 0 and "mnist: found in" in capsys.readouterr().out


def test_data_list_says_no_for_a_truncated_gzip(tmp_path, capsys):
    """Was: ``available yes`` for a truncated gzip (only the file names were looked at)."""
    from streamvae.cli import main

    from ..conftest import write_fashion_root

    root = write_fashion_root(tmp_path / "data")
    victim = root / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    assert main(["data", "list", "--data-root", str(root)]) == 0
    assert [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("fashion ")][0].split()[1] == "yes"
    victim.write_bytes(victim.read_bytes()[:-40])  # the end of the deflate stream and its CRC are gone
    assert main(["data", "list", "--data-root", str(root)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("fashion ")][0]
    assert line.split()[1] == "no" and "damaged" in line and "t10k-images-idx3-ubyte.gz is truncated" in line


def test_fetch_names_damaged_files_it_does_not_manage(tmp_path, monkeypatch, capsys):
    """A damaged system copy (here: a folder standing for Debian's) is named, never overwritten."""
    from streamvae.cli import main

    from ..conftest import write_fashion_root

    system = write_fashion_root(tmp_path / "system") / "fashion-mnist"
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion": (str(system),)})
    victim = system / "train-labels-idx1-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:-40])
    assert main(["data", "fetch", "fashion"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train-labels-idx1-ubyte.gz is truncated" in err[0] and str(system) in err[0]
