"""Memories: mechanisms over stored images; they never call the model."""
from __future__ import annotations

from .ocm import (SELECTIONS, DiverseSelection, LongTermMemory, ShortTermMemory, SimilarSelection, kernel_matrix,
                  similarity_scores)
from .reservoir import ReservoirMemory, reservoir_index

__all__ = ["ReservoirMemory", "reservoir_index", "ShortTermMemory", "LongTermMemory", "kernel_matrix",
           "similarity_scores", "SimilarSelection", "DiverseSelection", "SELECTIONS"]
