"""Dataset registry and offline-first loading: ``load_dataset(name, split)``.

Files are looked for in this order (the first place holding every file a split needs wins):

1. the data root: the ``data_root`` argument (CLI ``--data-root DIR``), else the environment
   variable ``STREAMVAE_DATA``, laid out ``ROOT/<folder>/<standard files>`` (IDX files gzipped or
   raw; CIFAR extracted as ``ROOT/cifar10/cifar-10-batches-py/...`` and
   ``ROOT/cifar100/cifar-100-python/...``);
2. system folders installed by a package (:data:`SYSTEM_DIRS`; Fashion-MNIST only: Debian's
   ``dataset-fashion-mnist`` puts it in ``/usr/share/datasets/fashion-mnist``);
3. the user cache: ``$STREAMVAE_CACHE/<folder>``, else ``$XDG_CACHE_HOME/streamvae/<folder>``, else
   ``~/.cache/streamvae/<folder>``;
4. a download into the cache, only with ``download=True``, verified against the checksums the
   dataset authors publish before use (see :mod:`streamvae.data.download`).

Loaded arrays are kept in a small in-process cache keyed by (name, split, resolved folder), so a
second ``load_dataset`` call returns the very same arrays. They are read-only
(``setflags(write=False)``): callers that need to modify them must copy them first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamvae.data import download as _dl
from streamvae.data.readers import read_cifar, read_idx, read_omniglot_mat, read_svhn_mat
from streamvae.errors import DataError
from streamvae.utils import cache_dir

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "RemoteFile",
    "SPLITS",
    "SYSTEM_DIRS",
    "cache_dir",
    "clear_cache",
    "data_root_dir",
    "dataset_table",
    "fetch",
    "load_dataset",
    "locate",
]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch from a mirror (``mirror + name``) and its published checksums.

    ``archive`` marks a tar.gz that is extracted into the dataset folder after verification (and then
    deleted). ``splits`` says which splits need the file.
    """

    name: str
    md5: str | None = None
    sha256: str | None = None
    archive: bool = False
    splits: tuple[str, ...] = SPLITS


@dataclass(frozen=True)
class DatasetSpec:
    """Static description of a dataset: where its files live and what they contain.

    ``train_files`` / ``test_files`` are paths relative to the dataset folder. For the IDX format
    they are given without ``.gz``: the gzipped and the raw file are both accepted.
    """

    name: str
    title: str
    folder: str
    fmt: str  # "idx" | "cifar10" | "cifar100" | "svhn" | "omniglot"
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    image_shape: tuple[int, int, int]
    num_classes: int
    mirrors: tuple[str, ...] = ()
    remote: tuple[RemoteFile, ...] = ()
    note: str = ""  # extra advice for placing the files by hand

    def files(self, split: str) -> tuple[str, ...]:
        """Standard files (relative to the dataset folder) that ``split`` needs."""
        return self.train_files if split == "train" else self.test_files

    @property
    def verified(self) -> bool:
        """True if every remote file has a published checksum."""
        return bool(self.remote) and all(r.md5 or r.sha256 for r in self.remote)


def _idx_files(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")


def _idx_remote(md5: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(f"{stem}.gz", md5=md5[stem], splits=(split,))
        for split in SPLITS
        for stem in _idx_files(split)
    )


# Checksums: only digests published by the dataset authors (and used by torchvision) that we know
# with confidence. They are md5 digests; no sha256 digests are published for these files.
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        folder="mnist",
        fmt="idx",
        train_files=_idx_files("train"),
        test_files=_idx_files("test"),
        image_shape=(1, 28, 28),
        num_classes=10,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        # md5 as in torchvision.datasets.MNIST (the same files on both mirrors).
        remote=_idx_remote({
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        }),
    ),
    "fashion": DatasetSpec(
        name="fashion",
        title="Fashion-MNIST",
        folder="fashion-mnist",
        fmt="idx",
        train_files=_idx_files("train"),
        test_files=_idx_files("test"),
        image_shape=(1, 28, 28),
        num_classes=10,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        # md5 published in Fashion-MNIST's README (also used by torchvision). Debian's package
        # recompresses the files, so its .gz digests differ; it is read locally, never downloaded.
        remote=_idx_remote({
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        }),
        note=(
            "or, on Debian/Ubuntu, apt-get install -y dataset-fashion-mnist "
            "(it installs the files into /usr/share/datasets/fashion-mnist)"
        ),
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        title="Kuzushiji-MNIST",
        folder="kmnist",
        fmt="idx",
        train_files=_idx_files("train"),
        test_files=_idx_files("test"),
        image_shape=(1, 28, 28),
        num_classes=10,
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        # md5 as in torchvision.datasets.KMNIST.
        remote=_idx_remote({
            "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
        }),
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        folder="cifar10",
        fmt="cifar10",
        train_files=tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
        test_files=("cifar-10-batches-py/test_batch",),
        image_shape=(3, 32, 32),
        num_classes=10,
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        # md5 published on https://www.cs.toronto.edu/~kriz/cifar.html (also in torchvision).
        remote=(RemoteFile("cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a", archive=True),),
        note="extract cifar-10-python.tar.gz there (it contains the folder cifar-10-batches-py)",
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        title="CIFAR-100 (fine labels)",
        folder="cifar100",
        fmt="cifar100",
        train_files=("cifar-100-python/train",),
        test_files=("cifar-100-python/test",),
        image_shape=(3, 32, 32),
        num_classes=100,
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        # md5 published on https://www.cs.toronto.edu/~kriz/cifar.html (also in torchvision).
        remote=(RemoteFile("cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85", archive=True),),
        note="extract cifar-100-python.tar.gz there (it contains the folder cifar-100-python)",
    ),
    "svhn": DatasetSpec(
        name="svhn",
        title="SVHN (cropped digits)",
        folder="svhn",
        fmt="svhn",
        train_files=("train_32x32.mat",),
        test_files=("test_32x32.mat",),
        image_shape=(3, 32, 32),
        num_classes=10,
        mirrors=("http://ufldl.stanford.edu/housenumbers/",),
        # md5 as in torchvision.datasets.SVHN.
        remote=(
            RemoteFile("train_32x32.mat", md5="e26dedcc434d2e4c54c9b2d4a06d8373", splits=("train",)),
            RemoteFile("test_32x32.mat", md5="eb5a983be6a315427106f1b164d9cef3", splits=("test",)),
        ),
    ),
    "omniglot": DatasetSpec(
        name="omniglot",
        title="OMNIGLOT 28x28 (Burda et al., IWAE; labels = alphabet)",
        folder="omniglot",
        fmt="omniglot",
        train_files=("chardata.mat",),
        test_files=("chardata.mat",),
        image_shape=(1, 28, 28),
        num_classes=50,
        mirrors=("https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/",),
        # No checksum is published for chardata.mat and we do not know one with confidence, so a
        # download is refused unless allow_unverified=True.
        remote=(RemoteFile("chardata.mat"),),
    ),
}

# Folders filled by system packages, searched after the data root and before the cache. Each entry
# holds the standard files directly (no <folder> level). Tests monkeypatch this.
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion": ("/usr/share/datasets/fashion-mnist",),
}

# (name, split, resolved folder) -> (images, labels), both read-only.
_LOADED: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}


def clear_cache() -> None:
    """Forget the arrays kept by :func:`load_dataset` (e.g. after files changed on disk)."""
    _LOADED.clear()


def data_root_dir(data_root: str | Path | None = None) -> Path | None:
    """The data root: ``data_root`` if given, else ``$STREAMVAE_DATA``, else None."""
    if data_root is not None and str(data_root) != "":
        return Path(data_root).expanduser()
    env = os.environ.get("STREAMVAE_DATA")
    return Path(env).expanduser() if env else None


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}") from None


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def _resolve_file(spec: DatasetSpec, folder: Path, rel: str) -> Path | None:
    """Path of a standard file in ``folder`` (IDX: ``.gz`` preferred, raw accepted), or None."""
    candidates = [folder / f"{rel}.gz", folder / rel] if spec.fmt == "idx" else [folder / rel]
    for path in candidates:
        if path.is_file():
            return path
    return None


def _missing(spec: DatasetSpec, folder: Path, split: str | None) -> list[str]:
    splits = SPLITS if split is None else (split,)
    rels = dict.fromkeys(rel for s in splits for rel in spec.files(s))
    return [rel for rel in rels if _resolve_file(spec, folder, rel) is None]


def _candidates(spec: DatasetSpec, data_root: str | Path | None) -> list[tuple[Path, str]]:
    places: list[tuple[Path, str]] = []
    root = data_root_dir(data_root)
    if root is not None:
        places.append((root / spec.folder, "data root"))
    for d in SYSTEM_DIRS.get(spec.name, ()):
        places.append((Path(d), "debian"))
    places.append((cache_dir() / spec.folder, "cache"))
    return places


def locate(
    name: str, data_root: str | Path | None = None, split: str | None = None
) -> tuple[Path | None, str]:
    """Where the dataset's files are: ``(folder, source)`` with source "data root", "debian",
    "cache", or ``(None, "missing")``. With ``split=None`` both splits must be present."""
    spec = _spec(name)
    if split is not None:
        _check_split(split)
    for folder, source in _candidates(spec, data_root):
        if not _missing(spec, folder, split):
            return folder, source
    return None, "missing"


def _file_list(spec: DatasetSpec, split: str | None) -> str:
    splits = SPLITS if split is None else (split,)
    rels = dict.fromkeys(rel for s in splits for rel in spec.files(s))
    suffix = " (each gzipped .gz or raw)" if spec.fmt == "idx" else ""
    shown = [f"{r}.gz" if spec.fmt == "idx" else r for r in rels]
    return ", ".join(shown) + suffix


def _placement_advice(spec: DatasetSpec, split: str | None, data_root: str | Path | None) -> str:
    root = data_root_dir(data_root)
    files = _file_list(spec, split)
    cache = cache_dir() / spec.folder
    if root is not None:
        where = f"put {files} in {root / spec.folder}/"
    else:
        where = (
            f"put {files} in DIR/{spec.folder}/ and pass --data-root DIR (or set STREAMVAE_DATA=DIR), "
            f"or put them in {cache}/ (searched automatically)"
        )
    if spec.note:
        where += f"; {spec.note}"
    return where


def _not_found(spec: DatasetSpec, split: str, data_root: str | Path | None) -> DataError:
    lines = [f"dataset {spec.name!r} ({spec.title}), split {split!r}: files not found. Looked in:"]
    if data_root_dir(data_root) is None:
        lines.append("  - data root: none set (use --data-root DIR or the STREAMVAE_DATA environment variable)")
    for folder, source in _candidates(spec, data_root):
        missing = _missing(spec, folder, split)
        state = "folder does not exist" if not folder.is_dir() else "missing " + ", ".join(missing)
        lines.append(f"  - {source}: {folder} ({state})")
    root = data_root_dir(data_root)
    if root is not None and root.is_dir() and not _missing(spec, root, split):
        lines.append(
            f"Note: {root} itself holds these files, but they must be in the subfolder "
            f"{root / spec.folder}/ (the data root holds one folder per dataset)."
        )
    lines.append("To fix: " + _placement_advice(spec, split, data_root) + ".")
    if spec.mirrors:
        lines.append(
            f"Or, on a machine that is online: streamvae data fetch {spec.name}"
            + ("" if spec.verified else " --allow-unverified (no published checksum)")
            + f" (downloads from {spec.mirrors[0]} into --data-root DIR, else the user cache; in Python: "
            "load_dataset(..., download=True))."
        )
    return DataError("\n".join(lines))


def _download(spec: DatasetSpec, split: str, data_root: str | Path | None, allow_unverified: bool,
              dest_dir: Path | None = None) -> Path:
    """Fetch the files ``split`` needs into ``dest_dir`` (default: the cache folder), verified, and
    return that folder."""
    dest_dir = dest_dir if dest_dir is not None else cache_dir() / spec.folder
    hint = "to install it by hand, " + _placement_advice(spec, split, data_root)
    if not spec.mirrors or not spec.remote:
        raise DataError(f"dataset {spec.name!r} has no download source; {hint}")
    for remote in spec.remote:
        if split not in remote.splits:
            continue
        if not remote.archive and (dest_dir / remote.name).is_file():
            continue  # already downloaded (and verified) earlier
        if not (remote.md5 or remote.sha256) and not allow_unverified:
            raise DataError(
                f"refusing to download {remote.name} for dataset {spec.name!r}: no published checksum "
                "is known for it, so it cannot be verified. Pass allow_unverified=True to download it "
                f"anyway, or {_placement_advice(spec, split, data_root)}"
            )
        target = dest_dir / remote.name
        errors: list[str] = []
        for mirror in spec.mirrors:
            url = mirror if mirror.endswith(remote.name) else mirror.rstrip("/") + "/" + remote.name
            try:
                _dl.download(
                    url, target, md5=remote.md5, sha256=remote.sha256,
                    allow_unverified=allow_unverified, hint=hint,
                )
                break
            except DataError as exc:
                errors.append(str(exc))
        else:
            if len(errors) == 1:
                raise DataError(errors[0])
            raise DataError(
                f"could not download {remote.name} for dataset {spec.name!r} from any mirror:\n  - "
                + "\n  - ".join(errors)
            )
        if remote.archive:
            try:
                _dl.extract_tar(target, dest_dir)
            finally:
                target.unlink(missing_ok=True)
    missing = _missing(spec, dest_dir, split)
    if missing:
        raise DataError(
            f"downloaded dataset {spec.name!r} into {dest_dir} but files are still missing: "
            f"{', '.join(missing)}"
        )
    return dest_dir


def _read(spec: DatasetSpec, split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    if spec.fmt == "idx":
        img_rel, lbl_rel = spec.files(split)
        img_path = _resolve_file(spec, folder, img_rel)
        lbl_path = _resolve_file(spec, folder, lbl_rel)
        assert img_path is not None and lbl_path is not None
        images, labels = read_idx(img_path), read_idx(lbl_path)
        h, w = spec.image_shape[1:]
        if images.ndim != 3 or images.shape[1:] != (h, w):
            raise DataError(f"{img_path}: IDX images have shape {images.shape}; expected (N, {h}, {w})")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{lbl_path}: IDX labels have shape {labels.shape}; expected ({images.shape[0]},) to "
                f"match {img_path.name}"
            )
        return images[:, None, :, :], labels.astype(np.int64)
    if spec.fmt in ("cifar10", "cifar100"):
        sub = Path(spec.files(split)[0]).parent
        return read_cifar(folder / sub, split)
    if spec.fmt == "svhn":
        return read_svhn_mat(folder / spec.files(split)[0])
    if spec.fmt == "omniglot":
        return read_omniglot_mat(folder / spec.files(split)[0], split)
    raise DataError(f"dataset {spec.name!r} has unknown format {spec.fmt!r}")  # pragma: no cover


def load_dataset(
    name: str,
    split: str,
    data_root: str | Path | None = None,
    download: bool = False,
    *,
    allow_unverified: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(images uint8 (N, C, H, W), labels int64 (N,))`` for ``split`` in {"train", "test"}.

    The returned arrays are shared between calls and read-only; copy them before modifying.
    Raises DataError for an unknown name/split, for files not found anywhere (listing every place
    looked in and where to put which files), and for missing/corrupt files.
    """
    spec = _spec(name)
    _check_split(split)
    folder, _source = locate(name, data_root, split=split)
    if folder is None:
        if not download:
            raise _not_found(spec, split, data_root)
        folder = _download(spec, split, data_root, allow_unverified)
    key = (name, split, str(folder.resolve()))
    if key in _LOADED:
        return _LOADED[key]
    images, labels = _read(spec, split, folder)
    if images.shape[1:] != spec.image_shape:
        raise DataError(
            f"{folder}: {spec.title} {split} images have shape {images.shape[1:]}; expected {spec.image_shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(
            f"{folder}: {spec.title} {split} labels span {labels.min()}..{labels.max()}; "
            f"expected 0..{spec.num_classes - 1}"
        )
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    _LOADED[key] = (images, labels)
    return images, labels


STALE_PART_S = 600  # a download's ``.part`` file untouched for this long was left by a killed fetch


def _digests(spec: DatasetSpec) -> dict[str, RemoteFile]:
    """The published checksums by file name (the files as downloaded, e.g. ``train-images-idx3-ubyte.gz``)."""
    return {r.name: r for r in spec.remote if not r.archive and (r.md5 or r.sha256)}


def _gzip_intact(path: Path) -> str | None:
    """None when ``path`` is not gzip or is a whole gzip stream (its CRC checked); else the reason."""
    import gzip
    import zlib

    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                return None
        with gzip.open(path, "rb") as g:
            while g.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as e:
        return f"{path.name} is truncated or corrupt ({e})"
    return None


def check_files(name: str, folder: str | Path, verify_digests: bool = True) -> list[str]:
    """What is wrong with the dataset's files in ``folder`` (one reason each; ``[]`` when they are whole):
    gzip files are read to their end (a truncated one fails its CRC), and with ``verify_digests`` a file
    that has a published checksum (a file as downloaded) must match it."""
    spec = _spec(name)
    folder = Path(folder)
    published = _digests(spec) if verify_digests else {}
    problems = []
    for rel in dict.fromkeys(rel for s in SPLITS for rel in spec.files(s)):
        path = _resolve_file(spec, folder, rel)
        if path is None:
            continue
        remote = published.get(path.name)
        if remote is not None:
            algorithm, want = ("sha256", remote.sha256) if remote.sha256 else ("md5", remote.md5)
            if _dl.file_digest(path, algorithm) != want:
                problems.append(f"{path.name} does not match its published {algorithm} (truncated or corrupt)")
                continue
        reason = _gzip_intact(path)
        if reason:
            problems.append(reason)
    return problems


def _remove_stale_parts(folder: Path) -> list[str]:
    """Delete ``.NAME.*.part`` files of downloads killed mid-way (untouched for :data:`STALE_PART_S`)."""
    import time

    removed = []
    for p in folder.glob(".*.part") if folder.is_dir() else []:
        try:
            if p.is_file() and time.time() - p.stat().st_mtime > STALE_PART_S:
                p.unlink()
                removed.append(p.name)
        except OSError:
            pass
    return removed


def fetch(name: str, data_root: str | Path | None = None, *, allow_unverified: bool = False) -> tuple[Path, str]:
    """Make ``name`` available for both splits: download (checksums verified) what is missing into
    ``data_root/<folder>`` when a data root is given, else into the user cache. Returns
    ``(folder, "found" | "downloaded" | "repaired")``. Files already present are checked first
    (:func:`check_files`): damaged ones in the cache (which fetch fills) are deleted and downloaded
    again; damaged ones elsewhere (a data root, a system package) are a DataError naming them, never
    deleted. Stale ``.part`` files of killed downloads are removed."""
    spec = _spec(name)
    root = data_root_dir(data_root) if data_root is not None else None
    dest = (root / spec.folder) if root is not None else None
    _remove_stale_parts(dest if dest is not None else cache_dir() / spec.folder)
    folder, source = locate(name, data_root)
    repaired = False
    if folder is not None and not _missing(spec, folder, None):
        problems = check_files(name, folder, verify_digests=source == "cache")
        if not problems:
            return folder, "found"
        if source != "cache":  # files someone placed: named, never deleted
            raise DataError(f"dataset {name!r} in {folder} ({source}) is damaged: {'; '.join(problems)}; "
                            "replace those files, or delete them and fetch again")
        for rel in dict.fromkeys(rel for s in SPLITS for rel in spec.files(s)):  # delete, then download again
            path = _resolve_file(spec, folder, rel)
            if path is not None and any(p.startswith(path.name + " ") for p in problems):
                path.unlink()
        repaired = True
        folder = None
    present: list[Path] = []
    for split in SPLITS:
        found, _ = locate(name, data_root, split=split)
        if found is None:
            folder = _download(spec, split, data_root, allow_unverified, dest)
        else:
            present.append(found)
    if folder is None:  # every split is present, but no one folder holds both: nothing was downloaded
        return present[0], "found"
    problems = check_files(name, folder)
    if problems:
        raise DataError(f"dataset {name!r} in {folder} is still damaged after downloading: {'; '.join(problems)}")
    return folder, "repaired" if repaired else "downloaded"


def dataset_table(data_root: str | Path | None = None) -> list[dict]:
    """One row per registered dataset: name, available (both splits, files whole), source, path (str or
    None), and, for a dataset found but damaged, ``problem`` (a truncated or corrupt file)."""
    rows = []
    for name in DATASETS:
        folder, source = locate(name, data_root)
        # published digests are those of the files as downloaded: checked in the cache (where fetch puts
        # them); elsewhere files may be recompressed (Debian) or placed raw, and their gzip CRC is checked
        problems = check_files(name, folder, verify_digests=source == "cache") if folder is not None else []
        row = {
            "name": name,
            "available": folder is not None and not problems,
            "source": source if not problems else f"{source}, damaged",
            "path": str(folder) if folder is not None else None,
        }
        if problems:
            row["problem"] = "; ".join(problems)
        rows.append(row)
    return rows
