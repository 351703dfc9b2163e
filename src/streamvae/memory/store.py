"""ImageStore: a growable tensor of flattened images ``(N, D)`` with a state dict.

The storage that OCM's short- and long-term memories and DEMC's temporary memory share; each
memory adds its own rule for what enters and when it is cut back. It lives on ``device`` (the
data's: images from another device move it there), also after ``load_state_dict``.
"""
from __future__ import annotations

import torch


class ImageStore:
    capacity: int  # the memory's size limit (what it means is the subclass's rule)
    dim: int  # flattened image size D

    def __init__(self, capacity: int, dim: int, device: torch.device | str | None = None):
        self.capacity = capacity
        self.dim = dim
        self._data = torch.zeros(0, dim, device=device)

    def __len__(self) -> int:
        return self._data.shape[0]

    @property
    def data(self) -> torch.Tensor:
        return self._data

    def append(self, x: torch.Tensor) -> None:
        self._data = torch.cat([self._data.to(x.device), x])

    def clear(self) -> None:
        self._data = torch.zeros(0, self.dim, device=self._data.device)

    def keep_last(self, n: int) -> None:
        """Keep only the ``n`` newest images."""
        self._data = self._data[max(0, len(self) - n):]

    def state_dict(self) -> dict:
        return {"data": self._data.clone()}

    def load_state_dict(self, state: dict) -> None:
        self._data = state["data"].to(self._data.device, copy=True)
