"""Representation probes on latent sets whose separability is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from streamvae.data.streams import TestSet as Split  # (not a test class)
from streamvae.evaluation.probe import (encoder_means, knn_accuracy, linear_probe_accuracy, probe_classes,
                                        probe_metrics)


def gaussians(n: int, shift: float, seed: int, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: N(0, I) and N(shift * 1, I)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    z = rng.standard_normal((n, dim)) + shift * y[:, None]
    return z, y


@pytest.mark.parametrize("probe", [linear_probe_accuracy, knn_accuracy])
def test_well_separated_classes_are_found_and_identical_ones_are_at_chance(probe):
    ztr, ytr = gaussians(400, 8.0, 0)
    zte, yte = gaussians(1000, 8.0, 1)
    assert probe(ztr, ytr, zte, yte).accuracy > 0.99
    ztr, ytr = gaussians(400, 0.0, 0)
    zte, yte = gaussians(1000, 0.0, 1)
    assert 0.4 < probe(ztr, ytr, zte, yte).accuracy < 0.6


def test_per_task_accuracy_separates_an_easy_task_from_an_impossible_one():
    # task 0: classes 0/1 far apart; task 1: classes 2/3 drawn from the same distribution
    z0, y0 = gaussians(800, 8.0, 0)
    z1, y1 = gaussians(800, 0.0, 1)
    z1 = z1 + 30.0  # the tasks themselves are far apart
    z = np.concatenate([z0, z1])
    y = np.concatenate([y0, y1 + 2])
    task = np.repeat([0, 1], 800)
    idx = np.random.default_rng(2).permutation(len(y))
    train, test = idx[:800], idx[800:]
    res = linear_probe_accuracy(z[train], y[train], z[test], y[test], test_tasks=task[test], num_tasks=3)
    assert res.per_task[0] > 0.98 and 0.35 < res.per_task[1] < 0.65 and res.per_task[2] is None
    assert res.accuracy == pytest.approx(np.mean([a for a in res.per_task if a is not None]), abs=0.05)


def test_a_single_training_class_predicts_that_class():
    res = knn_accuracy(np.zeros((5, 2)), np.ones(5), np.zeros((4, 2)), np.array([1, 1, 0, 0]))
    assert res.accuracy == 0.5
    assert linear_probe_accuracy(np.zeros((5, 2)), np.ones(5), np.zeros((4, 2)), np.ones(4)).accuracy == 1.0


def test_the_linear_probe_is_deterministic():
    ztr, ytr = gaussians(200, 1.0, 0)
    zte, yte = gaussians(200, 1.0, 1)
    assert linear_probe_accuracy(ztr, ytr, zte, yte, seed=3) == linear_probe_accuracy(ztr, ytr, zte, yte, seed=3)


class Constant(torch.nn.Module):
    """A stand-in component: encoder mean ``value`` everywhere, and a given ELBO per image."""

    has_likelihood = True

    def __init__(self, value: float, elbo: torch.Tensor):
        super().__init__()
        self.value, self.scores = value, elbo

    def encode(self, x):
        loc = torch.full((len(x), 3), self.value)
        return Normal(loc, torch.ones_like(loc))

    def elbo(self, x, samples=1, generator=None):
        return self.scores[: len(x)]


def test_encoder_means_of_a_mixture_take_each_images_best_component():
    a = Constant(1.0, torch.tensor([0.0, -5.0, 2.0]))
    b = Constant(2.0, torch.tensor([-1.0, 3.0, 1.0]))
    z = encoder_means([a, b], torch.zeros(3, 4))
    assert z.shape == (3, 3)
    np.testing.assert_array_equal(z[:, 0].numpy(), [1.0, 2.0, 1.0])
    assert encoder_means([a, b], torch.zeros(3, 4), choose="concat").shape == (3, 6)
    assert torch.equal(encoder_means(a, torch.zeros(3, 4)), torch.ones(3, 3))


class Pixels(Constant):
    """A stand-in component whose encoder mean is the image's first three pixels."""

    def __init__(self, value: float, elbo: torch.Tensor):
        super().__init__(value, elbo)
        self.weight = torch.nn.Parameter(torch.zeros(1))  # probe_metrics reads the device from it

    def encode(self, x):
        loc = x[:, :3].clone()
        return Normal(loc, torch.ones_like(loc))


def test_probe_features_concat_sees_components_the_selection_passes_over():
    # component a knows the class (its mean is the first pixels), b is constant but wins every ELBO
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    x = torch.randn(400, 4, generator=g) * 0.1 + y[:, None].float()
    sets = Split(x=x[:200], y=y[:200], task=torch.zeros(200, dtype=torch.long)), \
        Split(x=x[200:], y=y[200:], task=torch.zeros(200, dtype=torch.long))
    a, b = Pixels(0.0, torch.full((400,), -10.0)), Constant(0.5, torch.zeros(400))
    selected = probe_metrics([a, b], *sets, num_tasks=1, tasks_seen=1)
    concat = probe_metrics([a, b], *sets, num_tasks=1, tasks_seen=1, features="concat")
    assert selected["probe_linear"] == pytest.approx(0.5, abs=0.1)  # b's constant mean: chance
    assert concat["probe_linear"] == 1.0 and concat["probe_knn"] == 1.0


def test_probe_classes_keep_datasets_apart():
    labels, tasks = np.array([0, 0, 1]), np.array([0, 1, 1])  # e.g. MNIST "0" and Fashion "0"
    ids = probe_classes(labels, tasks)
    assert ids[0] != ids[1] and len(set(ids)) == 3
