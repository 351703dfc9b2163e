"""A checkpoint written by an older version resumes: the config fields added since are no change while
they keep their defaults (which reproduce the older behaviour), and the learner state in the layout of
1bc2268 (memories under their old names, OCM's n_components) loads and gives the uninterrupted results."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from streamvae.cli import main
from streamvae.config import to_dict
from streamvae.learners import LEARNERS
from streamvae.models.mixture import MixtureVAE
from streamvae.registry import load_config
from streamvae.rundir import config_changes
from streamvae.utils import load_checkpoint, save_checkpoint

from .conftest import REPO
from .test_cli import comparable


def _ocm(*sets: str) -> dict:
    return to_dict(load_config(None, ["learner.name=ocm", *sets]))


def _without(cfg: dict, *keys: str) -> dict:
    """The config as a version before ``keys`` existed wrote it."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for key in keys:
        section, _, name = key.rpartition(".")
        (out[section] if section else out).pop(name)
    return out


def test_fields_added_since_the_checkpoint_at_their_defaults_are_no_change():
    saved = _without(_ocm(), "precision", "learner.bf16_min_rows")
    assert config_changes(saved, _ocm()) == {}


def test_a_new_field_set_away_from_its_default_is_a_change():
    saved = _without(_ocm(), "precision")
    assert config_changes(saved, _ocm("precision=bf16")) == {"precision": [None, "bf16"]}


def test_edits_of_fields_the_checkpoint_has_are_changes_as_before():
    changes = config_changes(_ocm(), _ocm("learner.lr=0.0003"))
    assert list(changes) == ["learner.lr"] and changes["learner.lr"][1] == 0.0003


# -- checkpoints in the layout of 1bc2268 (before memories were declared once) resume identically -----------

# what 1bc2268 wrote: the learner's state and each learner's "extra" state, by key
OLD_LEARNER_KEYS = {"model", "generator", "device", "devices", "optimizers", "arrivals", "steps", "extra"}
OLD_EXTRA_KEYS = {
    "dynamic-ocm": {"stm", "ltm", "events", "events_since_test", "r_last", "log", "n_components", "frozen"},
    "demc": {"temp", "clusters", "log", "relative"},
    "iid": {"n_seen", "order", "cursor"},
}


def old_layout(ckpt: dict, learner: str) -> dict:
    """A checkpoint of today's code rewritten with the keys 1bc2268 used."""
    state = {k: v for k, v in ckpt["learner"].items() if k not in ("precision", "precisions")}  # precision: read from the top level then
    extra = dict(state["extra"])
    if learner == "demc":
        extra["temp"], extra["clusters"] = extra.pop("temporary"), extra.pop("cluster_images")
    if learner == "dynamic-ocm":
        n = MixtureVAE.components_in(state["model"])
        extra.update({"n_components": n, "frozen": list(range(n - 1))})
    assert set(state) == OLD_LEARNER_KEYS and set(extra) == OLD_EXTRA_KEYS[learner]
    return {**ckpt, "learner": {**state, "extra": extra}}


@pytest.mark.parametrize("learner", ["dynamic-ocm", "demc", "iid"])
def test_a_checkpoint_in_the_old_layout_resumes_to_the_uninterrupted_results(tmp_path, data_root, learner,
                                                                             monkeypatch):
    cfg = str(REPO / f"configs/split_fashion/{learner}.yaml")
    argv = ["--set", "budget=smoke", "--set", "kernels=torch", "--set", "eval.probe=false", "--set", "threads=1",
            "--no-progress", "--data-root", data_root]
    if learner == "dynamic-ocm":  # expansions and selection events before the interruption
        argv += ["--set", "memory.stm_capacity=64", "--set", "learner.expansion_threshold=0.0"]
    assert main(["run", cfg, *argv, "--out", str(tmp_path / "full")]) == 0
    real = LEARNERS[learner].observe

    def interrupted_at_four(self, x):
        if self.arrivals == 4:
            os.kill(os.getpid(), signal.SIGINT)  # the loop finishes the arrival, checkpoints, stops
        return real(self, x)

    monkeypatch.setattr(LEARNERS[learner], "observe", interrupted_at_four)
    out = tmp_path / "resumed"
    assert main(["run", cfg, *argv, "--out", str(out)]) == 130
    monkeypatch.setattr(LEARNERS[learner], "observe", real)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["arrival"] == 4
    save_checkpoint(out / "checkpoint.pt", old_layout(ckpt, learner))
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 0
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(full)
    if learner == "dynamic-ocm":
        assert full["components"] > 1  # the structure was rebuilt from the old checkpoint
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()] if learner != "iid" else []
    assert events == ([json.loads(line) for line in (tmp_path / "full" / "events.jsonl").read_text().splitlines()]
                      if learner != "iid" else [])
    assert torch.equal(load_checkpoint(out / "checkpoint.pt")["learner"]["generator"],
                       load_checkpoint(tmp_path / "full" / "checkpoint.pt")["learner"]["generator"])
