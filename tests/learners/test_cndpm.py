"""CN-DPM: the dummy decides the STM, a sleep adds one expert from the STM alone, lateral features
are detached, the prior-weighted mixture reading, resume, bad settings, and the MNIST data root."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from streamvae.cli import main
from streamvae.errors import ConfigError
from streamvae.evaluation.evaluator import score_components
from streamvae.models.bounds import iw_log_likelihood
from streamvae.loop import build
from streamvae.registry import load_config

from ..conftest import REPO, full_and_resumed, write_fashion_root

CFG = str(REPO / "configs/split_fashion/cndpm.yaml")


def _learner(data_root, *extra):
    cfg = load_config(CFG, ["budget=smoke", "progress=False", *extra])
    return build(cfg, data_root)


def test_an_image_goes_to_the_stm_if_and_only_if_the_dummy_wins(data_root):
    stream, learner = _learner(data_root, "stream.binarize=false")  # the wake's draws are then only z's
    learner.stm.add(stream.batch(0).x)
    learner.sleep()  # one expert
    x = stream.batch(1).x
    g = torch.Generator().set_state(learner.generator.get_state())
    with torch.no_grad():
        nll = learner.model.nll_all(x, 1, g)  # the same draws observe() will make
        best_expert = (nll[:, 1:] - learner.log_counts[1:].float()).min(1).values
    # put the dummy's fixed log count where about half of the batch prefers it
    learner.log_counts[0] = float((nll[:, 0] - best_expert).median())
    expected = (nll - learner.log_counts.float()).argmin(1) == 0
    assert 0 < int(expected.sum()) < len(x)
    before = len(learner.stm)
    learner.observe(x)
    assert torch.equal(learner.stm.data[before:], x[expected])


def test_a_sleep_adds_one_expert_with_count_one_plus_stm_empties_it_and_freezes_the_others(data_root):
    stream, learner = _learner(data_root)
    learner.stm.add(stream.batch(0).x)
    learner.sleep()
    earlier = {n: p.clone() for n, p in learner.model.named_parameters()}
    stm = torch.cat([stream.batch(1).x, stream.batch(2).x])
    learner.stm.add(stm)
    event = learner.sleep()
    assert len(learner.model) == 2 and len(learner.stm) == 0
    assert event["stm"] == len(stm) and len(learner.log_counts) == 3
    assert math.isclose(float(learner.log_counts[-1].exp()), 1 + len(stm), rel_tol=1e-9)  # released: log count 0, + |STM|
    for n, p in learner.model.named_parameters():
        if n in earlier:  # the dummy and expert 1
            assert torch.equal(p, earlier[n]), n
    new = dict(learner.model.experts[1].named_parameters())
    assert any(not torch.equal(p, torch.zeros_like(p)) for p in new.values())
    lr = learner.opts[-1].param_groups[0]["lr"]
    assert math.isclose(lr, learner.cfg.learner.lr * learner.cfg.learner.post_sleep_lr_factor)


def test_lateral_features_feed_later_experts_but_carry_no_gradient_back(data_root):
    stream, learner = _learner(data_root)
    for t in range(2):
        learner.stm.add(stream.batch(t).x)
        learner.sleep()
    first, second = learner.model.real()
    x = stream.batch(3).x
    loss = second.nll(x, second.encode(x)).sum()
    for p in learner.model.parameters():
        p.grad = None
    loss.backward()
    assert all(p.grad is None for p in first.parameters())
    assert all(p.grad is not None for p in second.parameters())
    # the features are really used: changing expert 1 changes expert 2's posterior
    mu = second.encode(x).loc.detach()
    with torch.no_grad():
        first.enc1.weight.add_(0.5)
    assert not torch.allclose(second.encode(x).loc, mu)


def test_the_mixture_reading_uses_the_given_weights(data_root):
    stream, learner = _learner(data_root)
    for t in range(2):
        learner.stm.add(stream.batch(t).x)
        learner.sleep()
    comps, x = learner.components(), (stream.batch(3).x > 0.5).float()
    w = torch.tensor([3.0, 1.0])
    g = torch.Generator().manual_seed(5)  # score_components draws the same bounds first
    lls = torch.stack([iw_log_likelihood(c, x, 8, g) for c in comps])
    weighted = score_components(comps, x, 8, torch.Generator().manual_seed(5), weights=w)["mixture"]
    uniform = score_components(comps, x, 8, torch.Generator().manual_seed(5))["mixture"]
    assert torch.allclose(weighted, torch.logsumexp(lls + torch.log(w / 4).double().unsqueeze(1), 0))
    assert torch.allclose(uniform, torch.logsumexp(lls, 0) - math.log(2))
    assert not torch.allclose(weighted, uniform)


def test_resume_equals_an_uninterrupted_run(tmp_path, data_root):
    args = [CFG, "--set", "budget=smoke", "--no-progress", "--data-root", data_root]
    full, part = full_and_resumed(tmp_path, args, data_root)
    assert full["experts"] >= 2 and full["components"] == full["experts"]
    assert isinstance(full["mixture_weights"], list) and len(full["mixture_weights"]) == full["experts"]
    assert full == part
    drop = lambda text: [{k: v for k, v in json.loads(line).items() if "_s" not in k}  # noqa: E731
                         for line in text.splitlines()]
    assert drop((tmp_path / "part/events.jsonl").read_text()) == drop((tmp_path / "full/events.jsonl").read_text())


@pytest.mark.parametrize("override, words", [
    (["memory.stm_capacity=40"], ["memory.stm_capacity=40", "learner.sleep_batch=50"]),
    (["learner.log_alpha=1e999"], ["learner.log_alpha", "finite"]),
    (["learner.log_alpha=.nan"], ["learner.log_alpha", "finite"]),
])
def test_bad_settings_give_one_line_errors(tmp_path, data_root, capsys, override, words):
    out = tmp_path / "bad"
    sets = [a for o in override for a in ("--set", o)]
    code = main(["run", CFG, "--set", "budget=smoke", *sets, "--no-progress", "--data-root", data_root, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not out.exists()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_log_alpha_is_checked_by_the_config_itself():
    with pytest.raises(ConfigError, match="log_alpha"):
        load_config(CFG, ["learner.log_alpha=1e999"])


def test_split_mnist_runs_from_a_data_root_with_the_cndpm_estimator(tmp_path, data_root):
    write_fashion_root(Path(data_root), folder_name="mnist")  # MNIST's standard IDX files under DIR/mnist
    out = tmp_path / "mnist"
    code = main(["run", str(REPO / "configs/split_mnist/cndpm.yaml"), "--set", "budget=smoke", "--no-progress",
                 "--data-root", data_root, "--out", str(out)])
    assert code == 0
    r = json.loads((out / "results.json").read_text())
    assert r["datasets"] == ["mnist"] and r["elbo16_mixture"] < 0
    assert math.isclose(r["elbo16_mixture_bpd"], -r["elbo16_mixture"] / math.log(2) / 784)
    assert r["elbo16_mixture"] <= r["ll_iw20_mixture"] + 5  # an ELBO mixture sits below the IW mixture (up to noise)
