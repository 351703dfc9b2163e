"""A run's own config.yaml runs again with its settings; a budget label never sits on other settings."""
from __future__ import annotations

import json

import pytest

from streamvae.cli import main
from streamvae.provenance import budget_label, is_resolved

from .conftest import REPO

SMOKE = ["--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=3", "--no-progress"]


def comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if "wall" not in k}


@pytest.mark.parametrize("learner", ["finetune", "ocm"])
def test_a_run_config_reruns_to_the_same_results(tmp_path, data_root, learner, capsys):
    first = tmp_path / "first"
    cfg = str(REPO / f"configs/split_fashion/{learner}.yaml")
    assert main(["run", cfg, *SMOKE, "--data-root", data_root, "--out", str(first)]) == 0
    again = tmp_path / "again"
    assert main(["run", str(first / "config.yaml"), "--no-progress", "--data-root", data_root,
                 "--out", str(again)]) == 0
    a = json.loads((first / "results.json").read_text())
    b = json.loads((again / "results.json").read_text())
    assert comparable(a) == comparable(b)  # every metric, the budget label, the steps
    assert b["budget"] == "smoke"
    assert (again / "config.yaml").read_text() == (first / "config.yaml").read_text()

    # --set budget=... other than the recorded one would relabel the smoke settings: refused, nothing written
    capsys.readouterr()
    assert main(["run", str(first / "config.yaml"), "--set", "budget=paper", "--data-root", data_root,
                 "--out", str(tmp_path / "relabelled")]) == 2
    err = capsys.readouterr().err
    assert "budget smoke is already applied" in err and f"split_fashion/{learner}" in err
    assert not (tmp_path / "relabelled").exists()


def test_a_hand_written_file_is_not_taken_for_a_resolved_config(tmp_path):
    import yaml

    partial = {"name": "mine", "budget": "fast", "learner": {"name": "finetune"}}
    assert not is_resolved(partial)  # fields left to their defaults: an experiment file
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(partial))
    with pytest.raises(Exception, match="budget 'fast' is not defined"):  # as before: no preset to apply
        from streamvae.provenance import load_any

        load_any(str(tmp_path / "mine.yaml"))


def test_compare_shows_what_differs_from_the_budget(tmp_path, data_root, capsys):
    out = tmp_path / "lr"
    cfg = str(REPO / "configs/split_fashion/finetune.yaml")
    assert main(["run", cfg, *SMOKE, "--set", "learner.lr=0.0003", "--data-root", data_root, "--out", str(out)]) == 0
    config = __import__("yaml").safe_load((out / "config.yaml").read_text())
    label = budget_label(config, "smoke")
    assert label.startswith("smoke + ") and "learner.lr=0.0003" in label and "stream.samples_per_class" not in label
    # the old mislabel: smoke settings recorded as paper would read as the paper budget's settings
    assert budget_label(config, "paper").startswith("paper + ")
    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    table = capsys.readouterr().out
    assert "smoke + " in table and "learner.lr=0.0003" in table
