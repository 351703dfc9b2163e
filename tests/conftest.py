"""Shared fixtures: a tiny Fashion-MNIST-format data root written in the real IDX format."""
from __future__ import annotations

import contextlib
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from streamvae import native
from streamvae.data import datasets

REPO = Path(__file__).resolve().parents[1]
# tests of the native path: skipped where no C compiler can build the library
needs_native = pytest.mark.skipif(native.library() is None, reason="no C compiler: the native library cannot be built")


def _write_idx_gz(path: Path, arr: np.ndarray) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(head + arr.tobytes()))


def make_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent blobs: class c lights a band of rows, so classes (and tasks) differ."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), n_per_class)  # interleaved, as in the real files
    images = rng.integers(0, 40, size=(len(labels), 28, 28))
    for i, c in enumerate(labels):
        images[i, 2 * c + 2: 2 * c + 8, 4:24] = rng.integers(180, 256, size=(6, 20))
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_domain_images(n_per_class: int, seed: int, domain: int) -> tuple[np.ndarray, np.ndarray]:
    """Domain 0: one random binary template with 3% of pixels flipped per image (easy to learn).
    Domain 1: uniform binary noise (about -543 nats at best), so a switch moves the likelihood a lot."""
    template = np.random.default_rng(1000).random((28, 28)) < 0.5
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), n_per_class)
    flips = rng.random((len(labels), 28, 28)) < (0.03 if domain == 0 else 0.5)
    return ((template ^ flips) * 255).astype(np.uint8), labels.astype(np.uint8)


def write_domain_root(root: Path, folder_name: str, domain: int, n_train: int = 40, n_test: int = 10) -> Path:
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = make_domain_images(n, seed, domain)
        _write_idx_gz(root / folder_name / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx_gz(root / folder_name / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def write_fashion_root(root: Path, n_train: int = 40, n_test: int = 10, folder_name: str = "fashion-mnist",
                       invert: bool = False) -> Path:
    """IDX files in ``root/folder_name``; ``invert`` makes a second, clearly different domain."""
    folder = root / folder_name
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = make_images(n, seed)
        if invert:
            images = 255 - images
        _write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture()
def data_root(tmp_path, monkeypatch) -> str:
    """A data root with 40 training and 10 test images per class; no system or cache fallback."""
    root = write_fashion_root(tmp_path / "data")
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STREAMVAE_DATA", raising=False)
    datasets.clear_cache()
    return str(root)


def full_and_resumed(tmp_path: Path, args: list[str], data_root: str, crash_at: int = 3) -> tuple[dict, dict]:
    """``results.json`` of a whole run and of one crashed at ``crash_at`` then resumed (``tmp_path/full``,
    ``tmp_path/part``), wall-time fields left out: the pair a resume-equality test compares."""
    import json

    from streamvae.cli import main

    assert main(["run", *args, "--out", str(tmp_path / "full")]) == 0
    with stream_crashing_at(crash_at), pytest.raises(RuntimeError):
        main(["run", *args, "--out", str(tmp_path / "part")])
    assert main(["run", "--resume", str(tmp_path / "part"), "--data-root", data_root]) == 0
    read = lambda d: {k: v for k, v in json.loads((tmp_path / d / "results.json").read_text()).items()  # noqa: E731
                      if "wall" not in k}
    return read("full"), read("part")


@contextlib.contextmanager
def stream_crashing_at(arrival: int):
    """Inside the block ``Stream.batch`` raises ``RuntimeError`` at ``arrival``: a simulated crash."""
    from streamvae.data.streams import Stream

    real = Stream.batch

    def crash(self, t):
        if t == arrival:
            raise RuntimeError("simulated crash")
        return real(self, t)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Stream, "batch", crash)
        yield


def without_banner(err: str) -> list[str]:
    """stderr lines without the start banner (``streamvae run: ...`` / ``streamvae resume: ...`` and its
    indented lines), which every run prints before it trains, also with --no-progress."""
    lines, in_banner = [], False
    for line in err.strip().splitlines():
        if line.startswith(("streamvae run: ", "streamvae resume: ")):
            in_banner = True
            continue
        if in_banner and line.startswith("  "):
            continue
        in_banner = False
        lines.append(line)
    return lines
