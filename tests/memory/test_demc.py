"""DEMC memories: KL novelty against closed forms, expansion under both aggregations, temporary memory."""
from __future__ import annotations

import math

import pytest
import torch

from streamvae.memory import (CLUSTER_SELECTIONS, ClusterMemory, ReservoirTemporaryMemory, TemporaryMemory,
                              kl_diag_gaussians, novelty_distances)


def stats(mean: float, std: float, n: int = 8, z: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image encoder statistics whose batch descriptor is (mean, std) in every dimension."""
    return torch.full((n, z), mean), torch.full((n, z), std)


def test_kl_matches_the_closed_form():
    # KL(N(0, 1) || N(1, 2^2)) = log 2 + (1 + 1) / 8 - 1/2;  KL(N(1, 2^2) || N(0, 1)) = -log 2 + (4 + 1) / 2 - 1/2
    a = kl_diag_gaussians(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(1.0), torch.tensor(2.0))
    b = kl_diag_gaussians(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.0), torch.tensor(1.0))
    assert float(a) == pytest.approx(math.log(2) + 0.25 - 0.5)
    assert float(b) == pytest.approx(-math.log(2) + 2.5 - 0.5)
    assert float(kl_diag_gaussians(torch.tensor(0.3), torch.tensor(0.7), torch.tensor(0.3), torch.tensor(0.7))) == 0


def test_novelty_is_the_mean_over_dimensions_of_kl_cluster_to_batch():
    # cluster descriptor: dims (0, 1) and (2, 1); batch: (1, 2) and (2, 1) -> per-dim KL(cluster || batch)
    means, stds = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 1.0]])
    m_new, s_new = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0])
    one = math.log(2) + 0.25 - 0.5
    other = -math.log(2) + 2.5 - 0.5  # KL(batch || cluster) in dim 0
    assert novelty_distances(means, stds, m_new, s_new, "one-sided").tolist() == pytest.approx([one / 2])
    assert novelty_distances(means, stds, m_new, s_new, "symmetric").tolist() == pytest.approx([(one + other) / 4])
    clusters = ClusterMemory(8, 3, novelty_kl="one-sided")
    clusters.add(torch.zeros(8, 3), means.expand(8, 2), stds.expand(8, 2))  # descriptor = the batch means
    mu, sigma = m_new.expand(5, 2), s_new.expand(5, 2)
    assert clusters.distances(mu, sigma).tolist() == pytest.approx([one / 2])


def novelty(clusters: ClusterMemory, mu: torch.Tensor, sigma: torch.Tensor) -> float:
    """The aggregated novelty of a batch, as DEMC's check computes it (inf with no cluster yet)."""
    return clusters.aggregate(clusters.distances(mu, sigma) if clusters.num_clusters else torch.zeros(0))


@pytest.mark.parametrize("agg", ["max", "min"])
def test_a_far_batch_is_novel_and_a_near_one_is_not(agg):
    clusters = ClusterMemory(8, 3, novelty_agg=agg)
    assert novelty(clusters, *stats(0.0, 1.0)) > 1.0  # no cluster yet: always novel
    clusters.add(torch.zeros(8, 3), *stats(0.0, 1.0))
    clusters.add(torch.ones(8, 3), *stats(0.2, 1.0))
    value = novelty(clusters, *stats(0.1, 1.0))
    assert not value > 1.0 and value == pytest.approx(0.1 ** 2 / 2)  # 0.005 from either cluster
    value = novelty(clusters, *stats(5.0, 1.0))
    assert value > 1.0 and value == pytest.approx(5.0 ** 2 / 2 if agg == "max" else 4.8 ** 2 / 2)  # farthest / nearest


def test_max_and_min_disagree_on_a_batch_near_one_cluster_only():
    near_first = stats(0.0, 1.0)
    for agg, expected in (("max", True), ("min", False)):
        clusters = ClusterMemory(8, 3, novelty_agg=agg)
        clusters.add(torch.zeros(8, 3), *stats(0.0, 1.0))
        clusters.add(torch.ones(8, 3), *stats(4.0, 1.0))
        assert (novelty(clusters, *near_first) > 1.0) is expected  # released max: far from *one*


def test_clusters_store_images_and_descriptors_and_cap_and_round_trip():
    clusters = ClusterMemory(4, 2, max_clusters=2)
    mu, sigma = torch.arange(8.0).reshape(4, 2), torch.full((4, 2), 0.5)
    clusters.add(torch.ones(4, 2), mu, sigma)
    assert clusters.means.tolist() == [[3.0, 4.0]] and clusters.stds.tolist() == [[0.5, 0.5]]
    assert not clusters.full()
    clusters.add(torch.zeros(4, 2), mu + 1, sigma)
    assert clusters.full() and len(clusters) == 8 and clusters.data.shape == (8, 2)
    with pytest.raises(ValueError, match="holds 4 images"):
        clusters.add(torch.zeros(3, 2), mu[:3], sigma[:3])
    clusters.set_descriptors(torch.zeros(8, 2), torch.ones(8, 2))
    assert clusters.means.abs().sum() == 0 and clusters.stds.tolist() == [[1.0, 1.0]] * 2
    copy = ClusterMemory(4, 2)
    copy.load_state_dict(clusters.state_dict())
    for name in ("images", "means", "stds"):
        assert torch.equal(getattr(copy, name), getattr(clusters, name))


def test_selection_rules_pick_lowest_highest_or_random_errors():
    errors = torch.tensor([5.0, 1.0, 3.0, 0.5, 9.0])
    assert CLUSTER_SELECTIONS["low-error"]().select(errors, 2).tolist() == [3, 1]
    assert CLUSTER_SELECTIONS["high-error"]().select(errors, 2).tolist() == [4, 0]
    picked = CLUSTER_SELECTIONS["random"]().select(errors, 3, torch.Generator().manual_seed(0))
    assert len(set(picked.tolist())) == 3


def test_temporary_memory_appends_then_cuts_back_at_random():
    temp = TemporaryMemory(10, 1)
    g = torch.Generator().manual_seed(0)
    temp.add(torch.arange(8.0)[:, None])
    temp.shrink(g)
    assert len(temp) == 8 and not temp.over_capacity()
    temp.add(torch.arange(8.0, 16.0)[:, None])
    assert temp.over_capacity() and len(temp) == 16  # training sees all 16
    temp.shrink(g)
    kept = temp.data[:, 0].tolist()
    assert len(kept) == 10 and len(set(kept)) == 10 and set(kept) <= set(range(16))
    copy = TemporaryMemory(10, 1)
    copy.load_state_dict(temp.state_dict())
    assert torch.equal(copy.data, temp.data)
    temp.clear()
    assert len(temp) == 0 and temp.n_seen == 0


def test_truncation_favours_recent_images_and_the_reservoir_does_not():
    """After 40 batches of 10 into a memory of 20: truncation keeps the last batches far more often;
    the reservoir keeps every image with p = 20 / 400 whatever its age."""
    g = torch.Generator().manual_seed(1)
    first_half = {"truncate": 0, "reservoir": 0}
    for _ in range(30):
        for name, cls in (("truncate", TemporaryMemory), ("reservoir", ReservoirTemporaryMemory)):
            temp = cls(20, 1)
            for t in range(40):
                temp.add(torch.arange(t * 10.0, t * 10.0 + 10)[:, None])
                temp.shrink(g)
            assert len(temp) == 20 and temp.n_seen == 400
            first_half[name] += int((temp.data < 200).sum())
    assert first_half["truncate"] < 0.05 * 600  # almost nothing survives from the first half
    assert 0.35 * 600 < first_half["reservoir"] < 0.65 * 600  # about half
