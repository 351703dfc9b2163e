"""Memories: mechanisms over stored images; they never call the model."""
from __future__ import annotations

from .reservoir import ReservoirMemory, reservoir_index

__all__ = ["ReservoirMemory", "reservoir_index"]
