"""The Python API (streamvae.api): the README's example, config loading by name, open_run on a finished run."""
from __future__ import annotations

import re

import pytest
import torch

import streamvae
from streamvae.errors import ConfigError

from .conftest import REPO


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- python-example -->\s*```python\n(.*?)```\s*<!-- /python-example -->", text, re.S)
    assert block, "README.md has no python-example block"
    return block.group(1)


def test_the_readme_example_runs(tmp_path, data_root, monkeypatch, capsys):
    monkeypatch.setenv("STREAMVAE_DATA", data_root)
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})  # its own asserts check shapes and signs
    assert (tmp_path / "runs/notebook/results.json").exists()
    out = capsys.readouterr()
    assert "streamvae run: split_fashion-ocm" in out.err  # the banner, with the progress bar


def test_load_config_by_name_path_and_overrides():
    by_name = streamvae.load_config("split_fashion/ocm", budget="smoke", overrides={"memory.sigma": 5.0})
    by_path = streamvae.load_config(REPO / "configs/split_fashion/ocm.yaml", ["budget=smoke", "memory.sigma=5.0"])
    assert by_name == by_path and by_name.memory.sigma == 5.0 and by_name.budget == "smoke"
    with pytest.raises(ConfigError, match="unknown config key"):
        streamvae.load_config("split_fashion/ocm", overrides={"memory.nope": 1})
    with pytest.raises(ConfigError, match="neither a file nor a shipped config"):
        streamvae.load_config("split_fashion/nope")


def test_open_run_of_a_mixture_scores_and_encodes_with_its_components(tmp_path, data_root):
    cfg = streamvae.load_config("split_fashion/dynamic-ocm", budget="smoke", overrides={
        "learner.expansion_threshold": 0.0, "learner.max_components": 2, "eval.every": 3})
    result = streamvae.run(cfg, tmp_path / "dyn", data_root=data_root, progress=False)
    r = streamvae.open_run(tmp_path / "dyn", data_root=data_root)
    assert r.results == result.results and len(r.learner.components()) == result.results["components"] == 2
    x = r.test_images(20)
    choice = r.assign(x)
    assert choice.shape == (20,) and set(choice.tolist()) <= {0, 1}
    q = r.encode(x)
    for i in (0, 7):  # each image's posterior is its own component's
        own = r.learner.components()[int(choice[i])].encode(x[i:i + 1].to(r.learner.device))
        assert torch.allclose(q.loc[i], own.loc[0].cpu())
    selected, mixture = r.score(x, k=10), r.score(x, k=10, mixture=True)
    assert selected.shape == mixture.shape == (20,) and torch.isfinite(selected).all()
    assert r.reconstruct(x[:4]).shape == (4, 1, 28, 28)
    assert torch.equal(r.sample(6, seed=3), r.sample(6, seed=3))  # seeded
    with pytest.raises(ConfigError, match="already holds a run"):
        streamvae.run(cfg, tmp_path / "dyn", data_root=data_root, progress=False)


def test_help_says_where_to_start():
    doc = streamvae.__doc__ or ""
    for name in ("load_config", "run", "open_run", "stream"):
        assert name in doc and name in streamvae.__all__ and callable(getattr(streamvae, name))
