"""Reservoir sampling (Vitter 1985, Algorithm R): after n items every item is kept with p = capacity / n.

The memory never calls a model; it stores images on a preallocated tensor, on the device of the
data it is given (``device=`` at construction; a batch from another device moves the buffer there).

    mem = ReservoirMemory(capacity=3000, dim=784)
    mem.add(x, generator=g)          # x: (B, D)
    mem.data                         # (len(mem), D)
"""
from __future__ import annotations

import torch


def reservoir_index(n_seen: int, capacity: int, generator: torch.Generator | None = None) -> int | None:
    """Slot for the item that arrives after ``n_seen`` others, or None if it is dropped.

    The item is item number n_seen + 1: it is kept with probability capacity / (n_seen + 1),
    so the draw is uniform over the n_seen + 1 integers 0..n_seen (inclusive).
    """
    if n_seen < capacity:
        return n_seen
    device = generator.device if generator is not None else None  # a CUDA generator draws on CUDA
    j = int(torch.randint(0, n_seen + 1, (1,), generator=generator, device=device))
    return j if j < capacity else None


class ReservoirMemory:
    capacity: int  # the most images stored
    n_seen: int  # images offered so far
    buffer: torch.Tensor  # (capacity, D) preallocated storage

    def __init__(self, capacity: int, dim: int, device: torch.device | str | None = None):
        self.capacity = capacity
        self.n_seen = 0
        self.buffer = torch.zeros(capacity, dim, device=device)

    def __len__(self) -> int:
        return min(self.n_seen, self.capacity)

    @property
    def data(self) -> torch.Tensor:
        return self.buffer[: len(self)]

    def add(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        if self.buffer.device != x.device:  # the buffer follows the data
            self.buffer = self.buffer.to(x.device)
        for row in x:
            slot = reservoir_index(self.n_seen, self.capacity, generator)
            if slot is not None:
                self.buffer[slot] = row
            self.n_seen += 1

    def state_dict(self) -> dict:
        return {"n_seen": self.n_seen, "data": self.data.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.n_seen = int(state["n_seen"])
        self.buffer[: len(state["data"])] = state["data"]  # copied onto the buffer's device
