"""Optional live view of a run in TensorBoard (``streamvae run ... --tensorboard``; ``pip install tensorboard``).

Scalars: the learner's per-arrival logs (``train/loss``, memory sizes, ...) at every arrival; every
number of an evaluation row (``eval/ll_iw100``, ``eval/probe_linear``, ``eval/memory``, ...) and its
per-task values (``per_task/<metric>/<task name>``) at every evaluation point. Images: samples of
every component from fixed prior draws (the same z at every point, so a grid shows how the model
changes) and a sample of what each memory holds. The progress bar stays; this writes files only:

    tensorboard --logdir runs/<run>/tensorboard
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import ConfigError
from .utils import image_grid


def require_tensorboard() -> None:
    """Raise a clear error when the optional ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError("TensorBoard logging (--tensorboard / tensorboard=true) needs the tensorboard "
                          "package: pip install tensorboard (or pip install 'streamvae[tensorboard]')") from None


class TensorBoardLog:
    """A thin wrapper around ``SummaryWriter``; the step is the arrival count (batches seen)."""

    def __init__(self, log_dir: str | Path, grid: int = 64, seed: int = 0, task_names: list[str] | None = None,
                 purge_step: int | None = None):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: on --resume, drop events written after the checkpoint (they are recomputed)
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)
        self.grid = grid
        self.seed = seed
        self.task_names = task_names or []

    def arrival(self, arrival: int, logs: dict) -> None:
        for k, v in logs.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"train/{k}", v, arrival)

    def evaluation(self, row: dict, components: list, shape: tuple[int, ...],
                   memories: dict[str, torch.Tensor] | None = None) -> None:
        step = row["arrival"]
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("arrival",):
                self.writer.add_scalar(f"eval/{k}", v, step)
        for metric, values in row.get("per_task", {}).items():
            for j, v in enumerate(values):
                if v is not None:
                    name = self.task_names[j] if j < len(self.task_names) else f"task{j}"
                    self.writer.add_scalar(f"per_task/{metric}/{name}", v, step)
        device = next(components[0].parameters()).device  # the run's device (device=cuda: draws there)
        g = torch.Generator(device=device).manual_seed(self.seed + 99)  # the same prior draws at every point
        per = max(8, self.grid // len(components)) if len(components) > 1 else self.grid
        samples = torch.cat([c.sample(per, g) for c in components])
        self._image("samples", samples, shape, step, nrow=8 if len(components) > 1 else None)
        for name, x in (memories or {}).items():
            if len(x):
                idx = torch.randperm(len(x), generator=g, device=device)[: self.grid].sort().values
                self._image(f"memory/{name}", x[idx], shape, step, nrow=16)
        self.writer.flush()

    def _image(self, tag: str, images: torch.Tensor, shape: tuple[int, ...], step: int, nrow: int | None) -> None:
        picture = image_grid(images.detach().cpu(), shape, nrow)
        self.writer.add_image(tag, picture, step, dataformats="HW" if picture.ndim == 2 else "HWC")

    def close(self) -> None:
        self.writer.close()
