"""Config loading: budgets, type-checked overrides, clear errors on unknown keys and bad values."""
from __future__ import annotations

import pytest

from streamvae.config import RunConfig, from_dict, load_config, to_dict, to_yaml
from streamvae.errors import ConfigError

from ..conftest import REPO

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


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.yaml")))
def test_every_shipped_config_loads_at_every_budget_it_names(path):
    import yaml

    budgets = yaml.safe_load((REPO / path).read_text()).get("budgets", {})
    assert {"paper", "fast", "smoke"} <= set(budgets), f"{path} must define paper, fast and smoke budgets"
    for budget in budgets:
        cfg = load_config(REPO / path, [f"budget={budget}"])
        assert cfg.budget == budget
