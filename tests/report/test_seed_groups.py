"""Runs that differ only in seed are one configuration, whichever version of streamvae wrote them
(older run directories once migrated: ``python -m streamvae.migrate``; reports read files as written)."""
from __future__ import annotations

from pathlib import Path

from streamvae.config import to_dict
from streamvae.migrate import migrated_config
from streamvae.registry import load_config
from streamvae.report.runs import Run, configuration, seed_groups


def _run(name: str, config: dict) -> Run:
    return Run(path=Path(name), config=config, results={"seed": config["seed"]}, rows=[], label=name)


def _today(**sets) -> dict:
    return to_dict(load_config(None, ["learner.name=ocm", *(f"{k}={v}" for k, v in sets.items())]))


def _older(cfg: dict) -> dict:
    """A config.yaml as older versions wrote it: another learner's fields, and none added since."""
    old = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    old["learner"]["gan_lr"] = 1e-4  # a VAE-GAN field OCM never had
    old["memory"]["novelty_threshold"] = 5.0
    old.pop("device")
    old["eval"].pop("fid_inception_sha256")
    return old


def test_runs_written_by_older_versions_group_with_new_ones_once_migrated():
    assert configuration(_run("old-s1", _older(_today(seed=1)))) != configuration(_run("new-s1", _today(seed=1)))
    runs = [_run("new-s0", _today(seed=0)), _run("old-s1", migrated_config(_older(_today(seed=1)))),
            _run("new-s2", _today(seed=2, threads=1, device="cpu"))]
    assert configuration(runs[0]) == configuration(runs[1]) == configuration(runs[2])
    groups = seed_groups(runs)
    assert len(groups) == 1 and groups[0].seeds == [0, 1, 2]


def test_a_setting_that_changes_the_run_still_separates_groups():
    runs = [_run("a-s0", _today(seed=0)), _run("a-s1", migrated_config(_older(_today(seed=1)))),
            _run("b-s0", _today(seed=0, **{"learner.lr": 3e-4})),
            _run("b-s1", migrated_config(_older(_today(seed=1, **{"learner.lr": 3e-4}))))]
    groups = seed_groups(runs)
    assert [g.seeds for g in groups] == [[0, 1], [0, 1]]
    assert "learner.lr" in groups[1].label


def test_a_learner_this_process_cannot_load_is_compared_as_written():
    cfg = _today(seed=0)
    cfg["learner"] = {**cfg["learner"], "name": "not-installed-plugin", "extra": 1}
    assert configuration(_run("p", cfg))["learner.extra"] == 1
