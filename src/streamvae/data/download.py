"""Verified, atomic downloads (urllib only) and safe extraction of tar archives.

:func:`download` streams a URL into a temporary file next to the destination, checks the sha256
and/or md5 digest *before* the file is used, and only then moves it into place with
:func:`os.replace`. A failed or mismatching download leaves no file behind. Machines that run this
project are usually offline (they reach package registries only), so a network failure raises a
:class:`~streamvae.errors.DataError` that says so and says where to put the file by hand.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from streamvae.errors import DataError

__all__ = ["download", "extract_tar", "file_digest"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_USER_AGENT = "streamvae/0.1 (+urllib)"


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``algorithm`` is any :mod:`hashlib` name, e.g. ``sha256``, ``md5``)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _offline_error(url: str, dest: Path, reason: object, hint: str | None) -> DataError:
    where = hint or f"download it by hand and put it at {dest}"
    return DataError(
        f"could not download {url}: {reason}. This machine seems to be offline (or the server is "
        f"unreachable); {where}"
    )


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 30,
    allow_unverified: bool = False,
    hint: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying the checksum(s) before the file is used.

    At least one of ``sha256`` / ``md5`` is required unless ``allow_unverified=True``. ``hint`` replaces
    the default "put it at DEST" advice in the offline error (the dataset layer passes the data-root
    instructions). Returns ``dest`` as a :class:`~pathlib.Path`.
    """
    dest = Path(dest)
    if sha256 is None and md5 is None and not allow_unverified:
        raise DataError(
            f"refusing to download {url}: no published checksum is known for it, so the file could "
            "not be verified; pass allow_unverified=True to download it anyway, or put the file by "
            f"hand at {dest}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashers = {}
    if sha256 is not None:
        hashers["sha256"] = (hashlib.sha256(), sha256.lower())
    if md5 is not None:
        hashers["md5"] = (hashlib.md5(), md5.lower())

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    ok = False
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as resp:
                    expected_len = resp.headers.get("Content-Length")
                    received = 0
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        for h, _ in hashers.values():
                            h.update(chunk)
            except urllib.error.HTTPError as exc:
                raise DataError(
                    f"could not download {url}: the server answered HTTP {exc.code} {exc.reason}; "
                    f"{hint or f'download it by hand and put it at {dest}'}"
                ) from None
            except urllib.error.URLError as exc:
                raise _offline_error(url, dest, exc.reason, hint) from None
            except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                raise _offline_error(url, dest, exc, hint) from None
        if expected_len is not None and expected_len.isdigit() and int(expected_len) != received:
            raise DataError(
                f"could not download {url}: connection closed after {received} of {expected_len} "
                f"bytes; {hint or f'download it by hand and put it at {dest}'}"
            )
        for algorithm, (h, want) in hashers.items():
            got = h.hexdigest()
            if got != want:
                raise DataError(
                    f"checksum mismatch for {url}: expected {algorithm} {want}, got {got}; "
                    "the file was deleted (corrupt download or wrong mirror)"
                )
        os.replace(tmp, dest)
        ok = True
        log.info("downloaded %s -> %s (%d bytes)", url, dest, received)
        return dest
    finally:
        if not ok:
            tmp.unlink(missing_ok=True)


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")):
        raise DataError(f"{archive}: refusing to extract unsafe path {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"{archive}: refusing to extract {member.name!r} (links and special files are not allowed)"
        )


def extract_tar(archive: str | Path, dest_dir: str | Path) -> list[Path]:
    """Safely extract a (gzipped) tar into ``dest_dir``; returns the top-level entries created.

    Members with absolute paths, ``..``, links or device files are refused. Extraction happens in a
    temporary folder inside ``dest_dir``; each top-level entry is then moved into place with
    :func:`os.replace` (an existing entry of the same name is replaced), so a failed extraction
    leaves nothing half-written.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(archive, m)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp_dir, members=members, filter="data")
                else:  # pragma: no cover - Python < 3.11.4
                    tar.extractall(tmp_dir, members=members)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{archive}: corrupt or truncated tar archive ({exc})") from None
        created = []
        for entry in sorted(tmp_dir.iterdir()):
            target = dest_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
