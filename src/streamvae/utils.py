"""Small shared helpers: atomic file writes, checkpoints, JSON lines, image grids."""
from __future__ import annotations

import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def cache_dir() -> Path:
    """The user cache root (read from the environment on every call): ``$STREAMVAE_CACHE``, else
    ``$XDG_CACHE_HOME/streamvae``, else ``~/.cache/streamvae``. Datasets and the compiled native library live here."""
    env = os.environ.get("STREAMVAE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "streamvae"
    return Path.home() / ".cache" / "streamvae"


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, hence the /proc path first)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | Path) -> None:
    """fsync a directory, so that a rename into it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory: the rename is still atomic
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename, fsync the folder: readers never see half a
    file, and the file has the mode an ordinary ``open`` would give it (0666 less the umask, e.g. 0644).

    Raises:
        OSError: with the destination as its file name (a full disk names the file being written).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: group and others could not read the run
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):  # write/fsync errors carry no name
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def read_regular(path: str | Path, limit: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened without blocking (a FIFO never hangs the reader) and, with ``follow_symlinks=False``,
    without following a symbolic link (a run directory's file never leads outside it).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a one-line reason (a link, a FIFO or device, a directory, too large).
    """
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
        if os.path.islink(path):  # O_NOFOLLOW's ELOOP says less
            raise ValueError("is a symbolic link, not a regular file")
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise ValueError("is a directory, not a file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError("is a symbolic link, not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError("is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
            raise ValueError(f"is {kind}, not a regular file")
        if st.st_size > limit:
            raise ValueError(f"is {st.st_size:,} bytes, more than the {limit:,} allowed")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew while we read
                raise ValueError(f"is more than the {limit:,} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_checkpoint(path: str | Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, loaded with ``weights_only=True``: only tensors,
    numbers, strings and containers of them are rebuilt, so a crafted file can never run code.

    Raises:
        CheckpointError: the file is missing, unreadable, truncated, or holds anything else (one line).
    """
    import pickle

    from .errors import CheckpointError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except pickle.UnpicklingError as e:  # weights_only refused a global (a crafted or foreign file), or garbage
        msg = str(e)
        if "GLOBAL " in msg:
            what = msg.split("GLOBAL ")[1].split()[0]
            raise CheckpointError(f"{path}: refused: it holds {what}, not only tensors, numbers and strings "
                                  "(a crafted or foreign file; streamvae never runs code from a checkpoint)") from None
        lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
        detail = lines[-2] if len(lines) >= 2 else (lines or ["unpickling failed"])[0]
        raise CheckpointError(f"{path}: not a readable streamvae checkpoint (corrupt: {detail})") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise CheckpointError(f"{path}: not a readable streamvae checkpoint (truncated or corrupt: {first})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a streamvae checkpoint (it holds a {type(state).__name__}, not a dict)")
    return state


MAX_LOG_BYTES = 1 << 30  # a run's JSON-lines file larger than this is refused, not read into memory


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows of a JSON-lines file (``[]`` when it does not exist); each row must be a JSON object.

    Raises:
        StreamVAEError: one line naming the file (and the line) when it is damaged, not a regular
            file, or a row is not an object.
    """
    from .errors import StreamVAEError

    path = Path(path)
    try:
        text = read_regular(path, MAX_LOG_BYTES, follow_symlinks=False).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except ValueError as e:
        raise StreamVAEError(f"{path} {e}") from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as e:  # edited or damaged by hand: one line naming the place
                raise StreamVAEError(f"{path}: line {i} is not JSON ({getattr(e, 'msg', e)}); the file is damaged") from None
            if not isinstance(row, dict):
                raise StreamVAEError(f"{path}: line {i} is a JSON {type(row).__name__}, not an object; the file is damaged")
            rows.append(row)
    return rows


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def image_grid(images: torch.Tensor | np.ndarray, shape: tuple[int, ...], nrow: int | None = None,
               pad: int = 2) -> np.ndarray:
    """Tile ``images: (N, D)`` or ``(N, C, H, W)`` in [0, 1] into one uint8 picture ``(H', W'[, 3])``."""
    x = torch.as_tensor(images).float().clamp(0, 1).reshape((-1,) + tuple(shape)).numpy()
    n, c, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol = int(math.ceil(n / nrow))
    grid = np.ones((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = x[i]
    grid = (grid * 255).round().astype(np.uint8)
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_grid(path: str | Path, images, shape: tuple[int, ...], nrow: int | None = None) -> None:
    """Save a PNG grid atomically."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image_grid(images, shape, nrow)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def save_titled_grids(path: str | Path, blocks: list[tuple[str, Any]], shape: tuple[int, ...],
                      nrow: int = 16) -> None:
    """Save one PNG of several grids stacked vertically, each under a one-line title.

    ``blocks``: ``[(title, images (N, D) in [0, 1]), ...]``; an empty block shows its title only.
    """
    from PIL import Image, ImageDraw

    pictures = []
    for title, images in blocks:
        grid = image_grid(images, shape, nrow) if len(images) else None
        width = grid.shape[1] if grid is not None else 8 * len(title)
        rgb = np.ones((14, width, 3), dtype=np.uint8) * 255  # the title strip
        head = Image.fromarray(rgb)
        ImageDraw.Draw(head).text((2, 1), title, fill=(0, 0, 0))
        parts = [np.asarray(head)]
        if grid is not None:
            parts.append(np.repeat(grid[..., None], 3, -1) if grid.ndim == 2 else grid)
        pictures.append(np.concatenate(parts, 0))
    width = max(p.shape[1] for p in pictures)
    canvas = np.concatenate([np.pad(p, ((0, 4), (0, width - p.shape[1]), (0, 0)), constant_values=255)
                             for p in pictures], 0)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def stretches(history: list) -> str:
    """A run's ``devices`` or ``precisions`` history (``[first arrival, value]`` of each stretch) in words:
    ``"bf16 from arrival 0, fp32 from arrival 459"``; a run that never changed says the value alone."""
    if len(history) == 1:
        return str(history[0][1])
    return ", ".join(f"{what} from arrival {a}" for a, what in history)
