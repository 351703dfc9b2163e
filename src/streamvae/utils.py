"""Small shared helpers: atomic file writes, checkpoints, JSON lines, image grids."""
from __future__ import annotations

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


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:  # edited or damaged by hand: one line naming the place
                from .errors import StreamVAEError

                raise StreamVAEError(f"{path}: line {i} is not JSON ({getattr(e, 'msg', e)}); the file is damaged") from None
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
