"""What the loop, the checkpoints and the report need from a memory: four members, nothing else.

A learner declares its memories once (``Learner.memories() -> {name: Memory}``); the number of images
each holds (``memory_sizes`` in every evaluation row), what it holds (``memory.png``, TensorBoard)
and its checkpoint state all follow from this protocol.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Memory(Protocol):
    def __len__(self) -> int:
        """Images stored."""
        ...

    @property
    def data(self) -> torch.Tensor:
        """Every stored image, ``(len(self), D)`` in [0, 1]."""
        ...

    def state_dict(self) -> dict:
        """Tensors, numbers and strings only (what a checkpoint may hold)."""
        ...

    def load_state_dict(self, state: dict) -> None:
        ...
