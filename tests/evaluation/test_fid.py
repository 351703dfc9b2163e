"""FID / IS: closed-form checks, and the cached, deterministic feature classifier."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from streamvae.config import EvalConfig
from streamvae.evaluation.fid import (feature_classifier, fid_from_features, frechet_distance, inception_score,
                                      train_classifier)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    f = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0)) @ torch.randn(16, 16)
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-6)
    shifts = [fid_from_features(f, f + s) for s in (0.1, 0.5, 1.0, 2.0)]
    assert shifts == sorted(shifts) and shifts[0] > 0
    assert shifts[-1] == pytest.approx(16 * 4.0, rel=1e-6)  # a mean shift of 2 in 16 dims: ||d||^2 = 64


def test_frechet_distance_of_gaussians_in_closed_form():
    # N(0, I) vs N(0, 4 I) in 3 dims: tr(I + 4I - 2 * 2I) = 3
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), 4 * np.eye(3)) == pytest.approx(3.0)


def test_inception_score_bounds():
    uniform = torch.zeros(100, 10)
    assert inception_score(uniform, splits=5)[0] == pytest.approx(1.0)
    confident = torch.full((100, 10), -30.0)
    confident[torch.arange(100), torch.arange(100) % 10] = 30.0  # sure of each class, classes balanced
    assert inception_score(confident, splits=5)[0] == pytest.approx(10.0, rel=1e-6)


def test_classifier_training_is_deterministic():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 784, generator=g) * 255).to(torch.uint8)
    y = torch.arange(64) % 4
    a = train_classifier(x, y, (1, 28, 28), 4, epochs=1, width=4, seed=3)
    b = train_classifier(x, y, (1, 28, 28), 4, epochs=1, width=4, seed=3)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_feature_classifier_is_trained_once_then_read_from_the_cache(data_root, tmp_path, monkeypatch):
    from streamvae.evaluation import fid

    cfg = EvalConfig(fid_classifier_epochs=6, fid_classifier_width=8)
    model, info = feature_classifier(("fashion",), data_root, cfg)
    assert info["test_acc"] > 0.5  # the synthetic classes are bands of bright rows: easy
    assert info["name"] == "convnet8-fashion-e6-nall-s0" and info["path"].startswith(str(tmp_path / "cache"))
    monkeypatch.setattr(fid, "_LOADED", {})  # a new process: read from disk, no training
    monkeypatch.setattr(fid, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    again, info2 = feature_classifier(("fashion",), data_root, cfg)
    assert info2["test_acc"] == info["test_acc"]
    x = torch.rand(5, 784)
    assert torch.equal(model.embed(x)[0], again.embed(x)[0])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, still works
def test_optional_inception_features_use_a_torchscript_file(tmp_path):
    from streamvae.evaluation.fid import inception_features

    class Pool(torch.nn.Module):  # stands in for the FID Inception: (B, 3, 299, 299) -> (B, 2048)
        def forward(self, x):
            assert x.shape[1:] == (3, 299, 299)
            return x.mean((2, 3)).repeat(1, 683)[:, :2048]

    path = tmp_path / "inception.pt"
    torch.jit.script(Pool()).save(str(path))
    f = inception_features(torch.rand(3, 784), (1, 28, 28), str(path))
    assert f.shape == (3, 2048) and (f >= -1).all() and (f <= 1).all()
