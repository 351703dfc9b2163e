"""Reservoir sampling keeps every item with probability capacity / n (Vitter's Algorithm R)."""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from streamvae.memory import ReservoirMemory, reservoir_index


def test_fills_then_never_exceeds_capacity():
    mem = ReservoirMemory(capacity=10, dim=3)
    g = torch.Generator().manual_seed(0)
    for i in range(7):
        mem.add(torch.full((4, 3), float(i)), g)
        assert len(mem) == min(4 * (i + 1), 10)
    assert mem.n_seen == 28


def test_each_item_kept_with_probability_capacity_over_n():
    """Chi-square test of the inclusion counts of 40 items in a memory of 10 over 4000 runs."""
    n, cap, runs = 40, 10, 4000
    g = torch.Generator().manual_seed(1)
    counts = np.zeros(n)
    for _ in range(runs):
        mem = ReservoirMemory(cap, 1)
        mem.add(torch.arange(n, dtype=torch.float32)[:, None], g)
        counts[mem.data[:, 0].long().numpy()] += 1
    expected = runs * cap / n
    assert np.allclose(counts.sum(), runs * cap)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, n - 1) > 1e-3, counts
    # the last item is kept with p = cap / n, not cap / (n - 1): the n + 1 draw is inclusive
    assert abs(counts[-1] / runs - cap / n) < 4 * np.sqrt(cap / n * (1 - cap / n) / runs)


def test_reservoir_index_draws_uniformly_over_n_plus_one():
    g = torch.Generator().manual_seed(2)
    kept = sum(reservoir_index(4, 1, g) is not None for _ in range(5000))  # p = 1/5
    assert abs(kept / 5000 - 0.2) < 0.02


def test_state_dict_round_trip():
    g = torch.Generator().manual_seed(3)
    a = ReservoirMemory(5, 2)
    a.add(torch.randn(9, 2), g)
    b = ReservoirMemory(5, 2)
    b.load_state_dict(a.state_dict())
    assert b.n_seen == 9 and torch.equal(a.data, b.data)
