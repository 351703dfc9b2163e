"""Memories: mechanisms over stored images; they never call the model."""
from __future__ import annotations

from .base import Memory
from .ocm import (SELECTIONS, DiverseSelection, LongTermMemory, ShortTermMemory, SimilarSelection, kernel_matrix,
                  similarity_scores)
from .demc import (CLUSTER_SELECTIONS, TEMPORARY_MEMORIES, ClusterMemory, ReservoirTemporaryMemory,
                   TemporaryMemory, kl_diag_gaussians, novelty_distances)
from .reservoir import ReservoirMemory, reservoir_index
from .store import ImageStore

__all__ = ["Memory", "ImageStore", "ReservoirMemory", "reservoir_index", "ShortTermMemory", "LongTermMemory", "kernel_matrix",
           "similarity_scores", "SimilarSelection", "DiverseSelection", "SELECTIONS",
           "TemporaryMemory", "ReservoirTemporaryMemory", "TEMPORARY_MEMORIES", "ClusterMemory",
           "CLUSTER_SELECTIONS", "kl_diag_gaussians", "novelty_distances"]
