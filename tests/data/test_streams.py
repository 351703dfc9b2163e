"""Streams: the orders of the papers, dropped remainders, seeded reproducibility, test binarisation."""
from __future__ import annotations

import numpy as np
import torch

from streamvae.config import EvalConfig, StreamConfig
from streamvae.data.streams import Stream, binarize, binarize_fixed


def test_class_order_is_sorted_with_original_order_inside_a_class(data_root):
    s = Stream(StreamConfig(order="class-order", batch_size=64), data_root)
    assert (np.diff(s.labels) >= 0).all()
    assert len(s) == 400 // 64 and s.batch(0).x.shape == (64, 784)  # 400 images: remainder 16 dropped
    order = s._parts[0][1]  # indices into the original file
    for c in range(10):
        assert (np.diff(order[s.labels == c]) > 0).all()  # original order inside a class
    assert s.task_ends()[-1] == len(s) and all(isinstance(t, int) for t in s.task_ends())
    x = s.batch(0).x
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_pairs_order_groups_two_classes_and_shuffles_only_inside_tasks(data_root):
    plain = Stream(StreamConfig(order="pairs", batch_size=8), data_root)
    assert (np.diff(plain.labels // 2) >= 0).all()
    assert set(plain.labels[:80]) == {0, 1} and plain.labels[0] == 0 and plain.labels[1] == 1  # original interleaving
    a = Stream(StreamConfig(order="pairs", shuffle_within_task=True, batch_size=8), data_root, seed=4)
    b = Stream(StreamConfig(order="pairs", shuffle_within_task=True, batch_size=8), data_root, seed=4)
    c = Stream(StreamConfig(order="pairs", shuffle_within_task=True, batch_size=8), data_root, seed=5)
    assert np.array_equal(a.labels, b.labels) and torch.equal(a.batch(3).x, b.batch(3).x)
    assert (np.diff(a.labels // 2) >= 0).all() and not np.array_equal(a.labels, c.labels)
    assert a.num_tasks == 5 and a.task_names[0] == "fashion:0+1"


def test_concatenated_datasets_and_dataset_tasks(data_root):
    s = Stream(StreamConfig(datasets=("fashion", "fashion"), tasks="dataset", batch_size=50), data_root)
    assert s.num_tasks == 2 and len(s) == 800 // 50 and s.task_ends() == [8, 16]
    test = s.test_set(EvalConfig())
    assert len(test.x) == 200 and set(test.task.tolist()) == {0, 1}


def test_max_batches_and_samples_per_class(data_root):
    s = Stream(StreamConfig(samples_per_class=5, max_batches=3, batch_size=10), data_root)
    assert len(s) == 3 and len(s.labels) == 50


def test_test_set_is_binarised_once_with_a_fixed_seed(data_root):
    s = Stream(StreamConfig(), data_root)
    t1, t2 = s.test_set(EvalConfig()), s.test_set(EvalConfig())
    assert torch.equal(t1.x, t2.x) and set(t1.x.unique().tolist()) <= {0.0, 1.0}
    sub = s.test_set(EvalConfig(), size=30)
    assert len(sub.x) == 30
    full_rows = {tuple(r) for r in t1.x.int().tolist()}
    assert all(tuple(r) in full_rows for r in sub.x.int().tolist())  # a subset sees the same binarisation
    grey = Stream(StreamConfig(binarize=False), data_root).test_set(EvalConfig())
    assert len(grey.x.unique()) > 2


def test_binarize_draws_each_pixel_one_with_its_intensity_as_probability():
    p = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.9, 1.0]).repeat(40_000, 1)  # (40000, 6)
    g = torch.Generator().manual_seed(0)
    b = binarize(p, g)
    assert b.dtype == p.dtype and set(b.unique().tolist()) <= {0.0, 1.0}
    freq = b.mean(0)
    sd = (p[0] * (1 - p[0]) / len(p)).sqrt()
    assert torch.all((freq - p[0]).abs() <= 5 * sd + 1e-12), (freq, p[0])  # 0 and 1 exactly, the rest within 5 sd
    # pixels are independent: the correlation between neighbouring columns is ~0
    c = torch.corrcoef(b[:, 2:5].T)
    assert (c - torch.eye(3)).abs().max() < 0.03
    # the same generator state gives the same pixels; a fresh draw differs
    assert torch.equal(binarize(p[:100], torch.Generator().manual_seed(3)), binarize(p[:100], torch.Generator().manual_seed(3)))
    assert not torch.equal(binarize(p[:100], g), binarize(p[:100], g))


def test_the_fast_binarize_draws_the_pixels_torch_bernoulli_draws():
    # on CPU torch.bernoulli compares the same uniforms: runs from before the faster binarisation
    # are reproduced bitwise (measured: a whole Dynamic-OCM fast run, BENCHMARKS.md)
    x = torch.rand(333, 784, generator=torch.Generator().manual_seed(1))
    for seed in (0, 7):
        assert torch.equal(binarize(x, torch.Generator().manual_seed(seed)),
                           torch.bernoulli(x, generator=torch.Generator().manual_seed(seed)))


def test_the_fixed_binarisation_is_torch_bernoulli_so_test_sets_stay_as_before():
    x = torch.rand(50, 784)
    assert torch.equal(binarize_fixed(x, torch.Generator().manual_seed(7)),
                       torch.bernoulli(x, generator=torch.Generator().manual_seed(7)))
