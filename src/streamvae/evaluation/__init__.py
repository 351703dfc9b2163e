"""Evaluation: pure functions over a model and a test set, plus the per-task aggregation."""
from __future__ import annotations

from ..models.bounds import elbo_per_image, iw_log_likelihood
from .reconstruction import recon_sse

__all__ = ["iw_log_likelihood", "elbo_per_image", "recon_sse"]
