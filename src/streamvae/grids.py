"""Pictures a person reads without the code: a titled grid whose rows carry labels.

``samples.png``: one row per component, labelled with its share of the test images (the final
evaluation's ``component_share``) and its optimiser steps; ``reconstructions.png``: rows of test
images labelled ``input`` above the row of their reconstructions. The loop writes both at the end of
a run (``loop.save_grids``); ``memory.png`` (``utils.save_titled_grids``) shows what each memory holds.

    save_labelled_rows("samples.png", "samples: ...", [("component 1: 40% of test images", x), ...], (1, 28, 28))
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .utils import atomic_write_bytes, image_grid, read_jsonl

SCALE = 2  # pixels per image pixel: 28x28 images are 56x56, so the labels' 11-pixel font reads beside them
CHAR_W = 6  # width of one character of PIL's default bitmap font


def save_labelled_rows(path: str | Path, title: str, rows: list[tuple[str, Any]], shape: tuple[int, ...],
                       scale: int = SCALE) -> None:
    """One PNG: ``title`` on top, then each row's images ``(N, D)`` in [0, 1] to the right of its label."""
    from PIL import Image, ImageDraw

    strips = [image_grid(images, shape, nrow=max(1, len(images))) for _, images in rows]
    strips = [np.repeat(np.repeat(s, scale, 0), scale, 1) for s in strips]
    strips = [s if s.ndim == 3 else np.repeat(s[..., None], 3, -1) for s in strips]
    label_w = CHAR_W * max((len(label) for label, _ in rows), default=0) + 12
    width = max([label_w + s.shape[1] for s in strips] + [CHAR_W * len(title) + 8])
    height = 20 + sum(s.shape[0] for s in strips)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), title, fill=(0, 0, 0))
    y = 20
    for (label, _), s in zip(rows, strips):
        canvas.paste(Image.fromarray(s), (label_w, y))
        draw.text((4, y + s.shape[0] // 2 - 6), label, fill=(0, 0, 0))
        y += s.shape[0]
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def component_steps(run_dir: str | Path, n_components: int) -> list[int | None]:
    """Optimiser steps each component of a growing mixture trained for: from the run's ``events.jsonl``
    (the arrivals of the expansions) and ``train.jsonl`` (steps after each arrival). Only the newest
    component trains, so component j trained between expansions j and j + 1."""
    run_dir = Path(run_dir)
    try:
        steps = {r["arrival"]: r["steps"] for r in read_jsonl(run_dir / "train.jsonl")}
        expansions = [e["arrival"] for e in read_jsonl(run_dir / "events.jsonl") if e.get("expanded")]
    except Exception:  # noqa: BLE001 (a picture label must never fail a run)
        return [None] * n_components
    if not steps or len(expansions) != n_components - 1:
        return [None] * n_components
    marks = [0] + [steps.get(a, 0) for a in expansions] + [steps[max(steps)]]
    return [marks[j + 1] - marks[j] for j in range(n_components)]


def sample_rows(samples: list[torch.Tensor], shares: list[float] | None, steps: list[int | None],
                total_steps: int) -> list[tuple[str, torch.Tensor]]:
    """Labels for ``samples.png``: one row per component, or unlabelled rows of 8 draws for a single model
    (``total_steps`` then goes in the title: :func:`sample_title`)."""
    if len(samples) == 1:
        x = samples[0]
        return [("", x[i:i + 8]) for i in range(0, len(x), 8)]  # the title says what they are
    rows = []
    for j, x in enumerate(samples):
        share = f"{100 * shares[j]:.1f}% of test images" if shares and j < len(shares) else "share -"
        st = f", {steps[j]:,} steps" if j < len(steps) and steps[j] is not None else ""
        rows.append((f"component {j + 1}: {share}{st}", x))
    return rows


def sample_title(learner_name: str, run_name: str, budget: str, components: int, total_steps: int) -> str:
    """The title of ``samples.png``."""
    what = "one row per component" if components > 1 else f"one model, {total_steps:,} optimiser steps"
    return f"samples: {learner_name}, {run_name}, budget {budget}: {what}"


def final_shares(run_dir: str | Path) -> list[float] | None:
    """``component_share`` of the final evaluation row (metrics.jsonl), if the run has one."""
    try:
        rows = read_jsonl(Path(run_dir) / "metrics.jsonl")
    except Exception:  # noqa: BLE001
        return None
    final = next((r for r in reversed(rows) if r.get("final")), None)
    return final.get("component_share") if final else None


__all__ = ["save_labelled_rows", "component_steps", "sample_rows", "sample_title", "final_shares"]
