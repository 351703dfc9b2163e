"""Config loading: budgets, type-checked overrides, clear errors on unknown keys and bad values."""
from __future__ import annotations

import pytest

from streamvae.config import RunConfig, to_dict, to_yaml
from streamvae.registry import from_dict, load_config
from streamvae.errors import ConfigError

from .conftest import REPO

RESERVOIR = REPO / "configs/split_fashion/reservoir.yaml"


def test_budget_presets_and_overrides_resolve_in_order():
    paper = load_config(RESERVOIR)
    assert paper.budget == "paper" and paper.learner.epochs_per_arrival == 100 and paper.learner.elbo_samples == 50
    fast = load_config(RESERVOIR, ["budget=fast"])
    assert fast.learner.epochs_per_arrival == 3 and fast.memory.capacity == 3000
    mine = load_config(RESERVOIR, ["budget=fast", "learner.epochs_per_arrival=7", "learner.lr=3e-4"])
    assert mine.learner.epochs_per_arrival == 7 and mine.learner.lr == 3e-4  # --set wins over the budget


def test_lists_become_tuples_and_round_trip():
    cfg = load_config(RESERVOIR, ["stream.datasets=[mnist,fashion]"])
    assert cfg.stream.datasets == ("mnist", "fashion")
    assert from_dict(to_dict(cfg)) == cfg
    assert "datasets:" in to_yaml(cfg)


@pytest.mark.parametrize("override, message", [
    ("learner.lrr=1", "unknown config key 'learner.lrr'"),
    ("nope=1", "Valid keys:"),
    ("learner.epochs_per_arrival=1.5", "expected an integer"),
    ("stream.binarize=3", "expected true/false"),
    ("budget=huge", "valid budgets"),
    ("learner.name=magic", "choose one of"),
    ("learner.lr", "key=value"),
    ("memory.capacity=0", "must be positive"),
    ("eval.probe_features=mean", "choose one of: selected, concat"),
])
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(RESERVOIR, [override])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["learner.epochs=3"])
    assert "learner.epochs_per_arrival" in str(e.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("learner: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    assert isinstance(load_config(None), RunConfig)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.yaml")
                                         if not p.parent.name.startswith("_")))
def test_every_shipped_config_loads_at_every_budget_it_names(path):
    from streamvae.config import read_yaml

    budgets = read_yaml(REPO / path).get("budgets", {})  # its own presets and the included ones
    assert {"paper", "fast", "smoke"} <= set(budgets), f"{path} must define paper, fast and smoke budgets"
    for budget in budgets:
        cfg = load_config(REPO / path, [f"budget={budget}"])
        assert cfg.budget == budget


def test_each_learner_gets_only_its_own_fields():
    fields = lambda cfg, section: set(to_dict(cfg).get(section, {}))  # noqa: E731
    fin = load_config(REPO / "configs/split_fashion/finetune.yaml")
    res = load_config(RESERVOIR)
    dyn = load_config(REPO / "configs/split_fashion/dynamic-ocm.yaml")
    demc = load_config(REPO / "configs/split_fashion/demc.yaml")
    assert fields(fin, "memory") == set() and "memory:" not in to_yaml(fin)
    assert fields(res, "memory") == {"capacity"} and "expansion_threshold" not in fields(res, "learner")
    assert {"stm_capacity", "kernel", "sigma"} <= fields(dyn, "memory") and "capacity" not in fields(dyn, "memory")
    assert {"expansion_threshold", "freeze_shared", "expansion_warmup"} <= fields(dyn, "learner")
    assert "expansion_threshold" not in fields(load_config(REPO / "configs/split_fashion/ocm.yaml"), "learner")
    assert {"gan_lr", "updates_per_arrival"} <= fields(demc, "learner") and "elbo_samples" not in fields(demc, "learner")
    assert fields(demc, "model") == {"name", "latent", "width", "init_std", "generation_prior"}
    assert "encoder_hidden" in fields(res, "model") and "width" not in fields(res, "model")


def test_switching_learner_keeps_fields_that_do_not_apply_an_error():
    with pytest.raises(ConfigError, match="'memory.capacity' for learner finetune. Valid keys: [(]none[)]"):
        load_config(RESERVOIR, ["learner.name=finetune"])
    cfg = load_config(REPO / "configs/split_fashion/finetune.yaml", ["learner.name=reservoir"])
    assert cfg.memory.capacity == 3000  # the reservoir's default memory section


def test_a_run_that_can_never_take_a_step_is_refused_before_training(tmp_path, data_root):
    from streamvae.cli import main

    out = tmp_path / "r"
    code = main(["run", str(REPO / "configs/split_fashion/finetune.yaml"), "--set", "budget=smoke",
                 "--set", "stream.batch_size=32", "--no-progress", "--data-root", data_root, "--out", str(out)])
    assert code == 2 and not (out / "results.json").exists() and not (out / "checkpoint.pt").exists()
