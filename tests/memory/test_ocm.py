"""OCM memories and the kernel selection rule, against hand-computed values."""
from __future__ import annotations

import math

import torch

from streamvae.memory import (DiverseSelection, LongTermMemory, ShortTermMemory, SimilarSelection, kernel_matrix,
                              similarity_scores)


def test_kernels_match_hand_computed_values():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 0.0], [6.0, 8.0]])
    # distances: [[0, 10], [5, 5]]
    lap = kernel_matrix(a, b, sigma=10.0, kernel="laplacian-l2")
    expect = torch.tensor([[1.0, math.exp(-10 / (math.sqrt(2) * 10))],
                           [math.exp(-5 / (math.sqrt(2) * 10)), math.exp(-5 / (math.sqrt(2) * 10))]], dtype=torch.float64)
    assert torch.allclose(lap, expect, atol=1e-12)
    se = kernel_matrix(a, b, sigma=10.0, kernel="squared-exp")
    assert torch.allclose(se[0, 1], torch.tensor(math.exp(-100 / 200), dtype=torch.float64))
    assert torch.allclose(se[1, 0], torch.tensor(math.exp(-25 / 200), dtype=torch.float64))


def test_score_is_mean_similarity_to_the_whole_ltm():
    f_stm = torch.tensor([[0.0], [1.0], [50.0]])
    f_ltm = torch.tensor([[0.0], [2.0]])
    s = similarity_scores(f_stm, f_ltm, sigma=1.0, kernel="laplacian-l2")
    k = lambda d: math.exp(-d / math.sqrt(2))  # noqa: E731
    expect = torch.tensor([(k(0) + k(2)) / 2, (k(1) + k(1)) / 2, (k(50) + k(48)) / 2], dtype=torch.float64)
    assert torch.allclose(s, expect)


def test_similar_rule_takes_highest_scores_above_threshold_in_order_at_most_cap():
    scores = torch.tensor([0.2, 0.9, 0.5, 0.95, 0.36, 0.34], dtype=torch.float64)
    assert SimilarSelection(14).select(scores, 0.35).tolist() == [3, 1, 2, 4]
    assert SimilarSelection(2).select(scores, 0.35).tolist() == [3, 1]
    assert SimilarSelection(14).select(scores, 1.0).tolist() == []  # the first event adds nothing
    assert DiverseSelection(2).select(scores, 0.35).tolist() == [0, 5]


def test_ltm_grows_at_most_per_event_cap_and_stops_at_capacity():
    stm, ltm = ShortTermMemory(8, 2), LongTermMemory(30, 2)
    rule = SimilarSelection(14)
    ltm.add(torch.zeros(5, 2))
    sizes = [len(ltm)]
    for event in range(6):
        while not stm.full():
            stm.add(torch.randn(4, 2) * 0.01)
        scores = similarity_scores(stm.data, ltm.data, sigma=10.0)
        ltm.add(stm.data[rule.select(scores, 0.35)])
        stm.clear()
        sizes.append(len(ltm))
    steps = [b - a for a, b in zip(sizes, sizes[1:])]
    assert all(0 <= s <= 14 for s in steps) and max(steps) == 12  # 12 STM samples per event, all similar
    assert sizes[-1] == sizes[-2] and 30 <= sizes[-1] < 30 + 14  # additions skipped once at capacity
    assert len(stm) == 0


def test_stm_fires_above_capacity_and_state_round_trips():
    stm = ShortTermMemory(512, 3)
    for _ in range(8):
        stm.add(torch.ones(64, 3))
    assert not stm.full()  # 512 is not more than 512
    stm.add(torch.ones(64, 3))
    assert stm.full() and len(stm) == 576
    other = ShortTermMemory(512, 3)
    other.load_state_dict(stm.state_dict())
    assert torch.equal(other.data, stm.data)
